//! Attention probabilities `softmax(scale·S + M)` over the last dimension in one pass, with a
//! backward, for the CPU.
//!
//! The composite (scale, mask add, max, subtract, exp, sum, divide) allocates and walks the
//! `[b, h, q, k]` score tensor seven times per layer, which dominated encoder training on long
//! GLUE inputs. Here the forward writes the probabilities once and the backward
//! `dS = scale · P ⊙ (dP − Σₖ dP ⊙ P)` once. The mask `M` (`[b, 1, 1 | q, k]`, additive, no
//! gradient) is a constant. Other devices and dtypes take the lean path of `attach.rs`, with the
//! same backward.

use super::attach::{attach1, widen};
use super::cpu_kernel::{on_storage, on_tensors, Float, Kernel};
use super::vec_math;
use super::softmax::softmax_last;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, TensorId, D};
use std::sync::{Arc, Mutex};
use rayon::prelude::*;

/// An additive mask `[b, mq, k]` on the host, flattened, in both precisions the kernels run in.
pub(crate) struct HostMask {
    f64: Vec<f64>,
    f32: Vec<f32>,
}

pub(crate) struct AttnSoftmax {
    /// Shared by every layer of a forward (`host_mask`).
    mask: Arc<HostMask>,
    mask_rows: usize,
    scale: f64,
}

impl AttnSoftmax {
    /// The op for `[b, h, q, k]` scores under an additive mask `[b, 1, 1 | q, k]`.
    pub(crate) fn new(mask: &Tensor, b: usize, q: usize, k: usize, scale: f64) -> Result<Self> {
        let mq = check_mask(mask, b, q, k)?;
        Ok(Self { mask: host_mask(mask)?, mask_rows: mq, scale })
    }

    /// Mask row for score row `row` of a `[b, h, q, k]` tensor.
    fn mask_range(&self, row: usize, h: usize, q: usize, k: usize) -> std::ops::Range<usize> {
        let (bi, qi) = (row / (h * q), row % q);
        let r = if self.mask_rows == 1 { bi } else { bi * q + qi };
        r * k..(r + 1) * k
    }

    pub(crate) fn forward<T: Float>(&self, x: &[T], dims: &[usize]) -> Vec<T> {
        let (h, q, k) = (dims[1], dims[2], dims[3]);
        let mut out = vec![T::from(0.0); x.len()];
        out.par_chunks_mut(k).zip(x.par_chunks(k)).enumerate().for_each(|(row, (o, s))| {
            let range = self.mask_range(row, h, q, k);
            // f32 in f32, as PyTorch computes it, on the vectorised loop.
            if let (Some(s), Some(o)) = (T::as_f32(s), T::as_f32_mut(o)) {
                return vec_math::masked_softmax(s, &self.mask.f32[range], self.scale as f32, o);
            }
            let m = &self.mask.f64[range];
            let mut max = f64::NEG_INFINITY;
            for j in 0..k {
                max = max.max(s[j].to() * self.scale + m[j]);
            }
            let mut sum = 0.0;
            for j in 0..k {
                let e = T::exp_at(s[j].to() * self.scale + m[j] - max);
                sum += e;
                o[j] = T::from(e);
            }
            let inv = 1.0 / sum;
            for v in o.iter_mut() {
                *v = T::from(v.to() * inv);
            }
        });
        out
    }
}

fn backward<T: Float>(p: &[T], g: &[T], k: usize, scale: f64) -> Vec<T> {
    let mut out = vec![T::from(0.0); p.len()];
    out.par_chunks_mut(k).zip(p.par_chunks(k).zip(g.par_chunks(k))).for_each(|(o, (p, g))| {
        if let (Some(p), Some(g), Some(o)) = (T::as_f32(p), T::as_f32(g), T::as_f32_mut(o)) {
            return vec_math::softmax_backward(p, g, scale as f32, o);
        }
        let dot: f64 = p.iter().zip(g).map(|(a, b)| a.to() * b.to()).sum();
        for j in 0..k {
            o[j] = T::from(scale * p[j].to() * (g[j].to() - dot));
        }
    });
    out
}

/// The forward and backward as `cpu_kernel` kernels.
struct Forward<'a> {
    op: &'a AttnSoftmax,
    dims: &'a [usize],
}

impl Kernel for Forward<'_> {
    const NAME: &'static str = "attention softmax";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        vec![self.op.forward(inputs[0], self.dims)]
    }
}

struct Backward {
    k: usize,
    scale: f64,
}

impl Kernel for Backward {
    const NAME: &'static str = "attention softmax backward";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        vec![backward(inputs[0], inputs[1], self.k, self.scale)]
    }
}

impl CustomOp1 for AttnSoftmax {
    fn name(&self) -> &'static str {
        "attention-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let kernel = Forward { op: self, dims: layout.dims() };
        Ok((on_storage(&kernel, &[(storage, layout)])?, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(attention_softmax_backward(res, grad, self.scale)?))
    }
}

/// `softmax(scale · scores + mask)` along the last dimension. `scores` is `[b, h, q, k]`, `mask`
/// is additive `[b, 1, 1, k]` or `[b, 1, q, k]`. Returns probabilities in the scores' dtype.
pub fn attention_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, _h, q, k) = scores.dims4()?;
    let dtype = scores.dtype();
    check_mask(mask, b, q, k)?;
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(scores) {
        return super::cuda_fused::attention_softmax(scores, mask, scale);
    }
    let fused = scores.device().is_cpu() && matches!(dtype, DType::F32 | DType::F64);
    if !fused {
        return attention_softmax_lean(scores, mask, scale);
    }
    scores.contiguous()?.apply_op1(AttnSoftmax::new(mask, b, q, k, scale)?)
}

/// The mask's values on the host. Every layer of a forward passes the same mask tensor, and
/// each op keeps its mask until the backward, so the copy is made once per tensor and shared:
/// one copy per layer was 12.6 MB × 30 layers for SmolLM2's grouped mask at 2 × 512 tokens.
fn host_mask(mask: &Tensor) -> Result<Arc<HostMask>> {
    static LAST: Mutex<Option<(TensorId, Arc<HostMask>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((id, v)) = last.as_ref() {
        if *id == mask.id() {
            return Ok(v.clone());
        }
    }
    let f64: Vec<f64> = mask.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let v = Arc::new(HostMask { f32: f64.iter().map(|&x| x as f32).collect(), f64 });
    *last = Some((mask.id(), v.clone()));
    Ok(v)
}

/// The mask's row count (1 or `q`) when it is `[b, 1, 1 | q, k]`.
fn check_mask(mask: &Tensor, b: usize, q: usize, k: usize) -> Result<usize> {
    let (mb, one, mq, mk) = mask.dims4()?;
    if mb != b || one != 1 || mk != k || (mq != 1 && mq != q) {
        candle_core::bail!("attention mask {:?} does not fit scores [{b}, _, {q}, {k}]", mask.dims());
    }
    Ok(mq)
}

/// The input gradient of [`attention_softmax`] from its output `p` and the output's gradient
/// `g`: `scale · p ⊙ (g − Σₖ g ⊙ p)`, in `p`'s dtype (computed in f32 for half precision).
pub(crate) fn attention_softmax_backward(p: &Tensor, g: &Tensor, scale: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(p) && g.dtype() == p.dtype() {
        return super::cuda_fused::attention_softmax_backward(p, g, scale);
    }
    if p.device().is_cpu() && matches!(p.dtype(), DType::F32 | DType::F64) && g.dtype() == p.dtype() {
        let kernel = Backward { k: *p.dims().last().unwrap_or(&1), scale };
        return Ok(on_tensors(&kernel, &[p, g], p.shape())?.pop().expect("one output"));
    }
    let (pw, gw) = (widen(p)?, widen(g)?);
    let dot = (&gw * &pw)?.sum_keepdim(D::Minus1)?;
    ((pw * gw.broadcast_sub(&dot)?)? * scale)?.to_dtype(p.dtype())
}

pub fn attention_softmax_lean(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let s = widen(&scores.detach())?;
    let m = mask.to_dtype(s.dtype())?;
    let p = softmax_last(&(s * scale)?.broadcast_add(&m)?)?.to_dtype(scores.dtype())?;
    attach1("attention-softmax", scores, p, move |_scores, p, g| Ok(Some(attention_softmax_backward(p, g, scale)?)))
}
