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

/// The spacing in positions between the heads of keys or values `[b, nkv, tk, hd]` with strides
/// `st`, when they are laid out as `reft_decode_attn` reads a reserved cache (key `j` of head
/// `h` of sequence `s` at element `((s·nkv + h)·cap + j)·hd`, `cap ≥ tk`), else `None`. Strides
/// of dimensions of size 1 do not matter, as in candle's contiguity: `contiguous()` returns a
/// one-position view `[b, h, 1, hd]` of `[b, 1, h, hd]` unchanged, strides and all.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))] // used by the CUDA path and the tests
pub(crate) fn cache_head_spacing(dims: &[usize], st: &[usize]) -> Option<usize> {
    let (&[b, nkv, tk, hd], &[s0, s1, s2, s3]) = (dims, st) else { return None };
    if dims.contains(&0) || (hd > 1 && s3 != 1) || (tk > 1 && s2 != hd) {
        return None;
    }
    let cap = match (nkv > 1, b > 1) {
        (true, _) if s1 % hd == 0 => s1 / hd,
        (false, true) if s0 % hd == 0 => s0 / hd,
        (false, false) => tk,
        _ => return None,
    };
    (cap >= tk && (b == 1 || s0 == nkv * cap * hd)).then_some(cap)
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
    // Keys and values laid out otherwise (e.g. a one-position view whose strides candle's
    // `contiguous` leaves as they were) take the general path.
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(q)
        && tq <= 16
        && q.dim(3)? <= 256
        && mask.dim(2)? == 1
        && k.dtype() == q.dtype()
        && v.dtype() == q.dtype()
        && !(q.track_op() || k.track_op() || v.track_op())
        && matches!((cache_head_spacing(k.dims(), k.layout().stride()), cache_head_spacing(v.dims(), v.layout().stride())), (Some(a), Some(b)) if a == b)
    {
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

#[cfg(test)]
mod tests {
    use super::cache_head_spacing;
    use candle_core::{Device, Tensor};

    fn spacing(t: &Tensor) -> Option<usize> {
        cache_head_spacing(t.dims(), t.layout().stride())
    }

    #[test]
    fn cache_layouts_are_recognised_and_others_refused() {
        let dev = Device::Cpu;
        let (b, h, cap, hd) = (3, 4, 10, 8);
        let cache = Tensor::zeros((b, h, cap, hd), candle_core::DType::F32, &dev).unwrap();
        // A reserved cache's first 6 positions, a contiguous tensor, one sequence, one head.
        assert_eq!(spacing(&cache.narrow(2, 0, 6).unwrap()), Some(cap));
        assert_eq!(spacing(&cache), Some(cap));
        assert_eq!(spacing(&cache.narrow(0, 1, 1).unwrap()), Some(cap));
        let one_head = Tensor::zeros((b, 1, 6, hd), candle_core::DType::F32, &dev).unwrap();
        assert_eq!(spacing(&one_head), Some(6));
        assert_eq!(spacing(&one_head.narrow(2, 0, 4).unwrap()), Some(6));
        // One position of `[b, t, h, hd]` seen as `[b, h, t, hd]`: contiguous to candle, with the
        // position's stride left at h·hd (the case an exact stride check refused).
        let rows = Tensor::zeros((b, 1, h, hd), candle_core::DType::F32, &dev).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        assert_eq!(rows.layout().stride()[2], h * hd);
        assert_eq!(spacing(&rows), Some(1));
        // Several positions of the same transpose are not cache rows, nor is a narrowed head
        // dimension or a sliced batch whose heads are spaced differently.
        let rows5 = Tensor::zeros((b, 5, h, hd), candle_core::DType::F32, &dev).unwrap().transpose(1, 2).unwrap();
        assert_eq!(spacing(&rows5), None);
        assert_eq!(spacing(&cache.narrow(3, 0, 4).unwrap()), None);
        assert_eq!(spacing(&cache.narrow(1, 0, 2).unwrap()), None);
        assert_eq!(cache_head_spacing(&[2, 2, 4, 8], &[64, 32, 8, 1]), Some(4));
        assert_eq!(cache_head_spacing(&[2, 2, 4, 8], &[64, 24, 8, 1]), None);
        assert_eq!(cache_head_spacing(&[0, 2, 4, 8], &[64, 32, 8, 1]), None);
        assert_eq!(cache_head_spacing(&[2, 2, 4], &[8, 4, 1]), None);
    }
}
