//! Differentiable building blocks whose backward we own.
//!
//! Candle's fused `softmax_last_dim`, `rms_norm`, `layer_norm` and `rope` have no backward and silently cut
//! the graph, and its matmul backward also computes gradients for frozen weights. Everything the
//! models use goes through this module instead; `tests/gradcheck.rs` proves each op against
//! finite differences in f64.

mod attach;
mod attention_softmax;
mod batched_matmul;
mod cpu_kernel;
mod frozen_linear;
mod gelu;
mod lm_cross_entropy;
mod norm;
mod rope;
mod softmax;
mod swiglu;

pub use attention_softmax::{attention_softmax, attention_softmax_lean};
pub use batched_matmul::batched_matmul;
pub use frozen_linear::{frozen_affine, frozen_linear, FrozenLinear};
pub use gelu::{gelu, gelu_lean};
pub use lm_cross_entropy::{lm_cross_entropy, lm_cross_entropy_with};
pub use norm::{layer_norm, rms_norm, rms_norm_lean};
pub use rope::{apply_rope, apply_rope_lean, RopeTables};
pub use softmax::{log_softmax_last, softmax_last};
pub use swiglu::{swiglu, swiglu_lean};
