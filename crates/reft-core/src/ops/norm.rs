//! Normalisations composed of differentiable primitives (candle-nn's fused `rms_norm` and
//! `layer_norm` have no backward). Statistics are computed in f32 for half-precision inputs.
//!
//! * RMSNorm as in Llama: `y = x / sqrt(mean(x²) + eps) · w`.
//! * LayerNorm as in BERT: `y = (x − mean) / sqrt(var + eps) · w + b`, biased variance.

use candle_core::{DType, Result, Tensor, D};

fn promote(xs: &Tensor) -> Result<Tensor> {
    match xs.dtype() {
        DType::F32 | DType::F64 => Ok(xs.clone()),
        _ => xs.to_dtype(DType::F32),
    }
}

/// RMS normalisation over the last dimension with a frozen gain `w` of shape `[hidden]`.
pub fn rms_norm(xs: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let x = promote(xs)?;
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    let y = x.broadcast_mul(&inv)?.to_dtype(xs.dtype())?;
    y.broadcast_mul(w)
}

/// Layer normalisation over the last dimension with frozen gain `w` and bias `b` (`[hidden]`).
pub fn layer_norm(xs: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let x = promote(xs)?;
    let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (var + eps)?.sqrt()?.recip()?;
    let y = centered.broadcast_mul(&inv)?.to_dtype(xs.dtype())?;
    y.broadcast_mul(w)?.broadcast_add(b)
}
