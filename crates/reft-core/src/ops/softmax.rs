//! Softmax and log-softmax over the last dimension, built from primitives that all have a
//! backward. The max is subtracted for stability and detached: the result does not depend on it,
//! so no gradient needs to flow through it.

use candle_core::{Result, Tensor, D};

/// `softmax(x)` along the last dimension.
pub fn softmax_last(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let e = xs.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// `log_softmax(x)` along the last dimension.
pub fn log_softmax_last(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let shifted = xs.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}
