//! Attention probabilities straight from queries and keys, `P = softmax(scale·QKᵀ + M)`, with a
//! backward to Q and K that needs only P.
//!
//! As two graph nodes (the product, then the softmax) the graph keeps the `[b, h, q, k]` scores
//! alive until the backward, as the softmax's input, next to the probabilities: a second tensor
//! the size of P on every layer (on the 7B anchor shape, 8 × 512 tokens in bf16, 134 MB per
//! layer and 4.3 GB per step). Here the scores live only inside the forward. The backward is
//! `dS = scale·P ⊙ (dP − Σₖ dP ⊙ P)` (the softmax's, `attention_softmax.rs`), then
//! `dQ = dS·K` and `dK = (Qᵀ·dS)ᵀ`, the GEMMs the product's own backward ran.
//!
//! On the CPU in f32/f64 the forward is one custom op (per-head GEMMs on the thread pool, then
//! the fused softmax); elsewhere (CUDA, half precision) it is the batched product and
//! `attention_softmax` on detached inputs, attached to the graph by `attach.rs`.

use super::attach::attach2;
use super::attention_softmax::{attention_softmax, attention_softmax_backward, AttnSoftmax};
use super::batched_matmul::{batched_matmul, gemms};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// `softmax(scale · q·kᵀ + mask)` for `q` `[b, h, tq, d]`, `k` `[b, h, tk, d]` and an additive
/// mask `[b, 1, 1 | tq, tk]`; returns `[b, h, tq, tk]` in `q`'s dtype.
pub fn attention_probs(q: &Tensor, k: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, h, tq, d) = q.dims4()?;
    let (kb, kh, tk, kd) = k.dims4()?;
    if (kb, kh, kd) != (b, h, d) || k.dtype() != q.dtype() {
        candle_core::bail!("attention_probs: keys {:?} {:?} do not fit queries {:?} {:?}", k.dims(), k.dtype(), q.dims(), q.dtype());
    }
    let cpu = q.device().is_cpu() && matches!(q.dtype(), DType::F32 | DType::F64);
    if cpu {
        let softmax = AttnSoftmax::new(mask, b, tq, tk, scale)?;
        return q.contiguous()?.apply_op2(&k.contiguous()?, AttentionProbs { softmax, scale });
    }
    let scores = batched_matmul(&q.detach(), &k.detach().t()?)?;
    let p = attention_softmax(&scores, mask, scale)?.detach();
    drop(scores);
    attach2("attention-probs", q, k, p, move |q, k, p, g| backward(q, k, p, g, scale))
}

/// `(dQ, dK)` from the probabilities and their gradient.
fn backward(q: &Tensor, k: &Tensor, p: &Tensor, g: &Tensor, scale: f64) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (dq, dk) = attention_probs_vjp(q, k, p, g, scale)?;
    Ok((Some(dq), Some(dk)))
}

/// The gradients of [`attention_probs`]'s queries and keys from the probabilities `p` and their
/// gradient `g`; `dK` comes back as a transposed view.
pub(crate) fn attention_probs_vjp(q: &Tensor, k: &Tensor, p: &Tensor, g: &Tensor, scale: f64) -> Result<(Tensor, Tensor)> {
    let ds = attention_softmax_backward(p, g, scale)?;
    let dq = batched_matmul(&ds, &k.detach())?;
    let dk = batched_matmul(&q.detach().t()?, &ds)?.t()?;
    Ok((dq, dk))
}

struct AttentionProbs {
    softmax: AttnSoftmax,
    scale: f64,
}

impl CustomOp2 for AttentionProbs {
    fn name(&self) -> &'static str {
        "attention-probs"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, tq, d) = l1.shape().dims4()?;
        let tk = l2.dims()[2];
        let (o1, o2) = match (l1.contiguous_offsets(), l2.contiguous_offsets()) {
            (Some(a), Some(b)) => (a, b),
            _ => candle_core::bail!("attention_probs: operands must be contiguous"),
        };
        let dims = [b, h, tq, tk];
        // Keys are read transposed in place: column stride d, row stride 1.
        let out = match (s1, s2) {
            (CpuStorage::F32(q), CpuStorage::F32(k)) => {
                CpuStorage::F32(self.softmax.forward(&gemms(&q[o1.0..o1.1], &k[o2.0..o2.1], b * h, tq, tk, d, true, 1f32), &dims))
            }
            (CpuStorage::F64(q), CpuStorage::F64(k)) => {
                CpuStorage::F64(self.softmax.forward(&gemms(&q[o1.0..o1.1], &k[o2.0..o2.1], b * h, tq, tk, d, true, 1f64), &dims))
            }
            _ => candle_core::bail!("attention_probs: f32 or f64 operands of one dtype expected"),
        };
        Ok((out, Shape::from(dims.to_vec())))
    }

    fn bwd(&self, q: &Tensor, k: &Tensor, p: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        backward(q, k, p, g, self.scale)
    }
}
