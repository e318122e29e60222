//! Differentiable building blocks whose backward we own.
//!
//! Candle's fused `softmax_last_dim`, `rms_norm`, `layer_norm` and `rope` have no backward and silently cut
//! the graph, and its matmul backward also computes gradients for frozen weights. Everything the
//! models use goes through this module instead; `tests/gradcheck.rs` proves each op against
//! finite differences in f64.

mod attach;
mod attend;
mod attention_probs;
mod attention_softmax;
mod batched_matmul;
mod cpu_kernel;
#[cfg(feature = "cuda")]
mod cuda_fused;
mod frozen_linear;
mod gelu;
mod lm_cross_entropy;
mod norm;
mod rope;
mod skinny_matmul;
mod softmax;
mod swiglu;
mod trace;
mod vec_math;

pub use attend::attend;
pub use attention_probs::attention_probs;
pub use attention_softmax::{attention_softmax, attention_softmax_lean};
pub use batched_matmul::batched_matmul;
pub use frozen_linear::{frozen_affine, frozen_linear, FrozenLinear};
pub use gelu::{gelu, gelu_lean};
pub use lm_cross_entropy::{lm_cross_entropy, lm_cross_entropy_with};
pub use norm::{layer_norm, rms_norm, rms_norm_lean};
pub use rope::{apply_rope, apply_rope_lean, RopeTables};
pub use softmax::{log_softmax_last, softmax_last};
pub use swiglu::{swiglu, swiglu_lean};
pub use trace::{set_trace, take_trace};
pub(crate) use attach::attach1;
pub(crate) use attention_probs::attention_probs_vjp;
pub(crate) use frozen_linear::frozen_linear_vjp;
pub(crate) use norm::rms_norm_vjp;
pub(crate) use rope::rope_vjp;
pub(crate) use swiglu::swiglu_vjp;

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not decided yet (read `REFT_CUDA_FUSED`), 1: off, 2: on.
static FUSED_CUDA: AtomicU8 = AtomicU8::new(0);

/// Turns the fused CUDA kernels (`reft-kernels`) on or off for the whole process, overriding
/// `REFT_CUDA_FUSED`. They are on by default since their first GPU run (an H200, 2026-11-27):
/// `examples/cuda_smoke.rs` matched the CPU with them as closely as without them, in f32 and
/// bf16. A build without the `cuda` feature ignores this.
pub fn set_fused_cuda_kernels(on: bool) {
    FUSED_CUDA.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether the fused CUDA kernels are on (`set_fused_cuda_kernels`, else on unless
/// `REFT_CUDA_FUSED=0`).
pub fn fused_cuda_kernels_on() -> bool {
    match FUSED_CUDA.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("REFT_CUDA_FUSED").map(|v| v != "0").unwrap_or(true);
            FUSED_CUDA.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}

/// 0: not decided yet (read `REFT_BLOCK_OPS`), 1: off, 2: on.
static BLOCK_OPS: AtomicU8 = AtomicU8::new(0);

/// Turns the block-level graph nodes of the Llama decoder (`models/llama_block.rs`: each
/// layer's attention and MLP as one node with a backward we write) on or off for the whole
/// process, overriding `REFT_BLOCK_OPS`. On by default; off, every op is a node of candle's
/// graph, as before 2026-11-27.
pub fn set_block_ops(on: bool) {
    BLOCK_OPS.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether the block-level nodes are on (`set_block_ops`, else on unless `REFT_BLOCK_OPS=0`).
pub fn block_ops_on() -> bool {
    match BLOCK_OPS.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("REFT_BLOCK_OPS").map(|v| v != "0").unwrap_or(true);
            BLOCK_OPS.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}
