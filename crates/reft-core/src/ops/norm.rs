//! RMSNorm as in Llama: `y = x / sqrt(mean(x²) + eps) * w`, statistics in f32.
//! Composed of differentiable primitives (candle's fused `rms_norm` has no backward).

use candle_core::{DType, Result, Tensor, D};

/// RMS normalisation over the last dimension with a frozen gain `w` of shape `[hidden]`.
pub fn rms_norm(xs: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = xs.dtype();
    let x = if dtype == DType::F32 || dtype == DType::F64 { xs.clone() } else { xs.to_dtype(DType::F32)? };
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    let y = x.broadcast_mul(&inv)?.to_dtype(dtype)?;
    y.broadcast_mul(w)
}
