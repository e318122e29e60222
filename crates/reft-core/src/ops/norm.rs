//! Normalisations composed of differentiable primitives (candle-nn's fused `rms_norm` and
//! `layer_norm` have no backward). Statistics are computed in f32 for half-precision inputs.
//!
//! * RMSNorm as in Llama: `y = x / sqrt(mean(x²) + eps) · w`. On the CPU (f32/f64) one fused
//!   op with its own backward; elsewhere the lean path of `attach.rs` (the composite of eight
//!   primitives kept every intermediate, reduced over the broadcast `1/rms` in its backward and
//!   built a dead gradient for the frozen gain).
//! * LayerNorm as in BERT: `y = (x − mean) / sqrt(var + eps) · w + b`, biased variance, on
//!   the lean path of `attach.rs` on every device (no native kernel).

use super::attach::{attach1, widen};
use super::cpu_kernel::{for_rows, on_storage, on_tensors, Float, Kernel, Out};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

/// `1 / sqrt(mean(x²) + eps)` of one row.
fn inv_rms<T: Float>(x: &[T], eps: f64) -> f64 {
    let ms = x.iter().map(|v| v.to() * v.to()).sum::<f64>() / x.len().max(1) as f64;
    1.0 / (ms + eps).sqrt()
}

/// Fused RMSNorm on `(x, w)`; the gain is frozen, so the backward returns `∂L/∂x` only:
/// `dx = r·(g⊙w) − x · r³/d · Σ g⊙w⊙x` per row, with `r = 1/rms`.
struct RmsNorm {
    eps: f64,
}

struct RmsForward(f64);
impl Kernel for RmsForward {
    const NAME: &'static str = "rms_norm";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        let (x, w) = (inputs[0], inputs[1]);
        let d = w.len();
        let mut y = vec![T::from(0.0); x.len()];
        let out = Out::new(&mut y);
        for_rows(x.len() / d.max(1), d, |rows| {
            // SAFETY: disjoint row ranges.
            let y = unsafe { out.part(rows.start * d, rows.end * d) };
            for (y, x) in y.chunks_mut(d).zip(x[rows.start * d..rows.end * d].chunks(d)) {
                let r = inv_rms(x, self.0);
                for ((y, x), w) in y.iter_mut().zip(x).zip(w) {
                    *y = T::from(x.to() * r * w.to());
                }
            }
        });
        vec![y]
    }
}

struct RmsBackward(f64);
impl Kernel for RmsBackward {
    const NAME: &'static str = "rms_norm backward";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        let (x, w, g) = (inputs[0], inputs[1], inputs[2]);
        let d = w.len();
        let mut dx = vec![T::from(0.0); x.len()];
        let out = Out::new(&mut dx);
        for_rows(x.len() / d.max(1), d, |rows| {
            // SAFETY: disjoint row ranges.
            let dx = unsafe { out.part(rows.start * d, rows.end * d) };
            for (row, dx) in rows.zip(dx.chunks_mut(d)) {
                let (x, g) = (&x[row * d..(row + 1) * d], &g[row * d..(row + 1) * d]);
                let r = inv_rms(x, self.0);
                let dot: f64 = (0..d).map(|i| g[i].to() * w[i].to() * x[i].to()).sum();
                let c = r * r * r * dot / d as f64;
                for i in 0..d {
                    dx[i] = T::from(r * g[i].to() * w[i].to() - c * x[i].to());
                }
            }
        });
        vec![dx]
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((on_storage(&RmsForward(self.eps), &[(s1, l1), (s2, l2)])?, l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = on_tensors(&RmsBackward(self.eps), &[x, w, g], x.shape())?.pop();
        Ok((dx, None))
    }
}

/// RMS normalisation over the last dimension with a frozen gain `w` of shape `[hidden]`.
pub fn rms_norm(xs: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let fused = xs.device().is_cpu() && matches!(xs.dtype(), DType::F32 | DType::F64);
    if fused && w.dtype() == xs.dtype() && w.dims1()? == xs.dim(D::Minus1)? {
        return xs.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps });
    }
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(xs) && w.dtype() == xs.dtype() && w.dims1()? == xs.dim(D::Minus1)? {
        return super::cuda_fused::rms_norm(xs, w, eps);
    }
    rms_norm_lean(xs, w, eps)
}

/// The input gradient of [`rms_norm`] at `xs` for the output gradient `g`, on the path its
/// forward takes (the fused CPU op, the fused CUDA kernel or the lean ops): for callers that
/// run a whole block outside the graph and write its backward (`models/llama_block.rs`).
pub(crate) fn rms_norm_vjp(xs: &Tensor, w: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    let same = w.dtype() == xs.dtype() && w.dims1()? == xs.dim(D::Minus1)?;
    if same && xs.device().is_cpu() && matches!(xs.dtype(), DType::F32 | DType::F64) {
        return Ok(on_tensors(&RmsBackward(eps), &[xs, w, g], xs.shape())?.remove(0));
    }
    #[cfg(feature = "cuda")]
    if same && super::cuda_fused::applies(xs) {
        return super::cuda_fused::rms_norm_backward(xs, w, g, eps);
    }
    rms_lean_backward(xs, &w.detach(), g, eps)
}

/// [`rms_norm_vjp`] plus `res`, the gradient of the residual branch around the norm's sublayer:
/// on CUDA one fused kernel (the norm's gradient rounded before the add, as the add would see
/// it), else the two ops.
pub(crate) fn rms_norm_vjp_add(xs: &Tensor, w: &Tensor, g: &Tensor, eps: f64, res: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if w.dtype() == xs.dtype() && w.dims1()? == xs.dim(D::Minus1)? && super::cuda_fused::applies(xs) && res.dtype() == xs.dtype() && res.shape() == xs.shape() {
        return super::cuda_fused::rms_norm_backward_add(xs, w, g, res, eps);
    }
    rms_norm_vjp(xs, w, g, eps)? + res
}

/// `dx = r·(g⊙w − x̂·mean(g⊙w⊙x̂))` in f32 (f64 for f64), in `xs`'s dtype.
fn rms_lean_backward(xs: &Tensor, w: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    let x = widen(xs)?;
    let inv = inv_rms_t(&x, eps)?;
    let xh = x.broadcast_mul(&inv)?;
    let gw = widen(g)?.broadcast_mul(&w.to_dtype(x.dtype())?)?;
    let dot = (&gw * &xh)?.mean_keepdim(D::Minus1)?;
    let dx = (gw - xh.broadcast_mul(&dot)?)?.broadcast_mul(&inv)?;
    dx.to_dtype(xs.dtype())
}

/// `1 / sqrt(mean(x²) + eps)` per row, in f32 (f64 for f64).
fn inv_rms_t(x: &Tensor, eps: f64) -> Result<Tensor> {
    (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()
}

/// RMSNorm off the native kernel (CUDA, half precision): the forward outside the graph, then
/// `dx = r·(g⊙w − x̂·mean(g⊙w⊙x̂))` with `r = 1/rms`, `x̂ = x·r`, statistics in f32 (see
/// `attach.rs`). The gain is frozen and gets no gradient.
#[doc(hidden)]
pub fn rms_norm_lean(xs: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let x = widen(&xs.detach())?;
    let y = x.broadcast_mul(&inv_rms_t(&x, eps)?)?.to_dtype(xs.dtype())?.broadcast_mul(w)?;
    let w = w.detach();
    attach1("rms-norm", xs, y, move |xs, _y, g| Ok(Some(rms_lean_backward(xs, &w, g, eps)?)))
}

/// Layer normalisation over the last dimension with frozen gain `w` and bias `b` (`[hidden]`).
///
/// The forward runs outside the graph and the backward is the closed form
/// `dx = r·(g⊙w − mean(g⊙w) − x̂·mean(g⊙w⊙x̂))` with `r = 1/σ`, `x̂ = (x − μ)·r`, statistics in
/// f32 for half precision (see `attach.rs`); gain and bias are frozen and get no gradient.
pub fn layer_norm(xs: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let (xh, _) = standardize(&widen(&xs.detach())?, eps)?;
    let y = xh.to_dtype(xs.dtype())?.broadcast_mul(w)?.broadcast_add(b)?;
    let w = w.detach();
    attach1("layer-norm", xs, y, move |xs, _y, g| {
        let (xh, inv) = standardize(&widen(xs)?, eps)?;
        let gw = widen(g)?.broadcast_mul(&w.to_dtype(xh.dtype())?)?;
        let mean_gw = gw.mean_keepdim(D::Minus1)?;
        let dot = (&gw * &xh)?.mean_keepdim(D::Minus1)?;
        let dx = gw.broadcast_sub(&mean_gw)?.sub(&xh.broadcast_mul(&dot)?)?.broadcast_mul(&inv)?;
        Ok(Some(dx.to_dtype(xs.dtype())?))
    })
}

/// `((x − μ)·r, r)` per row with `r = 1/sqrt(var + eps)` (biased variance).
fn standardize(x: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let inv = (centered.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    Ok((centered.broadcast_mul(&inv)?, inv))
}

/// `(x + r, rms_norm(x + r, w))`: a residual add and the RMSNorm after it. On CUDA without a
/// graph one fused kernel (`reft_add_rmsnorm_fwd`, the sum rounded as the add rounds it, so the
/// same numbers), else the add and then [`rms_norm`].
pub(crate) fn add_rms_norm(x: &Tensor, r: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(x) && !x.track_op() && !r.track_op() && r.dtype() == x.dtype() && w.dtype() == x.dtype() && r.shape() == x.shape() {
        return super::trace::traced("add + rms-norm", x, || super::cuda_fused::add_rms_norm(x, r, w, eps));
    }
    let s = (x + r)?;
    let n = rms_norm(&s, w, eps)?;
    Ok((s, n))
}
