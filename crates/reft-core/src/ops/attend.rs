//! Attention `softmax(scale·QKᵀ + M)·V`, optionally over the batch in chunks whose score
//! tensors stay under a size.
//!
//! The first GPU run of the anchor shapes (an H200, 2026-11-27, afternoon) found a training step
//! 30× slower where one layer's `[b, heads, q, k]` scores reach 2²⁵ elements; chunking the batch
//! so that no score tensor exceeds 2²⁴ elements was one of three fixes aimed at it. The evening
//! runs did not reproduce the slowdown, with chunking on or off (0.151 s against 0.154 s per
//! 1.1B step; docs/CUDA.md), so it is off by default everywhere and `REFT_ATTN_CHUNK=N` (score
//! elements per call) turns it on, for A/B runs. Examples do not attend to each other, so the
//! chunks' outputs concatenated are the same function, with the same gradients
//! (`tests/attend.rs`). Training on CUDA runs attention inside the block nodes
//! (`models/llama_block.rs`), unchunked.

use super::{attention_probs, batched_matmul};
use candle_core::{DType, Result, Tensor};

/// The most score elements one call may hold (`usize::MAX`, the default: no chunking).
fn max_scores() -> usize {
    match std::env::var("REFT_ATTN_CHUNK").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(0) | None => usize::MAX,
        Some(n) => n,
    }
}

/// Examples per call for `batch` examples of `per_example` score elements each, under `limit`
/// (at least one).
fn examples_per_call(batch: usize, per_example: usize, limit: usize) -> usize {
    (limit / per_example.max(1)).clamp(1, batch.max(1))
}

/// `softmax(scale·q·kᵀ + mask)·v` for `q` `[b, h, tq, d]`, `k` and `v` `[b, h, tk, d]` and an
/// additive mask `[b, 1, 1 | tq, tk]`; the probabilities are cast to `dtype` before the product
/// with `v`. Returns `[b, h, tq, d]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64, dtype: DType) -> Result<Tensor> {
    let (b, h, tq, _) = q.dims4()?;
    let tk = k.dim(2)?;
    // A decoding step (a few query rows, one key mask per sequence, no graph): one kernel on
    // CUDA (`reft_decode_attn`, f32 inside) in place of two batched GEMMs and the softmax.
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(q) && tq <= 16 && q.dim(3)? <= 256 && mask.dim(2)? == 1 && k.dtype() == q.dtype() && v.dtype() == q.dtype() && !(q.track_op() || k.track_op() || v.track_op()) {
        return super::trace::traced("attention", q, || super::cuda_fused::decode_attention(q, k, v, mask, scale));
    }
    let per_call = examples_per_call(b, h * tq * tk, max_scores());
    let one = |q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor| -> Result<Tensor> {
        let probs = attention_probs(q, k, mask, scale)?.to_dtype(dtype)?;
        batched_matmul(&probs, v)
    };
    if per_call >= b {
        return super::trace::traced("attention", q, || one(q, k, v, mask));
    }
    let mut outs = Vec::with_capacity(b.div_ceil(per_call));
    for start in (0..b).step_by(per_call) {
        let n = per_call.min(b - start);
        let part = |t: &Tensor| t.narrow(0, start, n);
        outs.push(one(&part(q)?, &part(k)?, &part(v)?, &part(mask)?)?);
    }
    Tensor::cat(&outs, 0)
}
