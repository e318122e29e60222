//! Attention `softmax(scale·QKᵀ + M)·V` over the batch in chunks whose score tensors stay under a
//! size, on CUDA.
//!
//! The first GPU run of the anchor shapes (an H200, 2026-11-27) found a training step 30× slower
//! or worse exactly where one layer's `[b, heads, q, k]` scores reach 2²⁵ elements (1.1B shape at
//! 16 × 256 and 4 × 512 tokens; 7B at 8 × 512), while 12 × 256 ran at 0.18 s. The cause is not
//! known yet (docs/CUDA.md). Splitting the batch so that no score tensor exceeds 2²⁴ elements
//! keeps every call below that size at no cost in arithmetic: examples do not attend to each
//! other, so the chunks' outputs concatenated are the same function, with the same gradients.
//! The CPU runs unchunked (its path is measured and linear in the batch).
//! `REFT_ATTN_CHUNK` sets the limit in elements (0: never split), for A/B runs on a GPU.

use super::{attention_probs, batched_matmul};
use candle_core::{DType, Device, Result, Tensor};

/// Default limit of score elements per call on CUDA.
const CUDA_MAX_SCORES: usize = 1 << 24;

/// The most score elements one call may hold on `device` (`usize::MAX`: no chunking).
fn max_scores(device: &Device) -> usize {
    match std::env::var("REFT_ATTN_CHUNK").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(0) => usize::MAX,
        Some(n) => n,
        None if device.is_cuda() => CUDA_MAX_SCORES,
        None => usize::MAX,
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
    let per_call = examples_per_call(b, h * tq * tk, max_scores(q.device()));
    let one = |q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor| -> Result<Tensor> {
        let probs = attention_probs(q, k, mask, scale)?.to_dtype(dtype)?;
        batched_matmul(&probs, v)
    };
    if per_call >= b {
        return one(q, k, v, mask);
    }
    let mut outs = Vec::with_capacity(b.div_ceil(per_call));
    for start in (0..b).step_by(per_call) {
        let n = per_call.min(b - start);
        let part = |t: &Tensor| t.narrow(0, start, n);
        outs.push(one(&part(q)?, &part(k)?, &part(v)?, &part(mask)?)?);
    }
    Tensor::cat(&outs, 0)
}
