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
pub(crate) mod cuda_fused;
mod frozen_linear;
mod gelu;
mod lm_cross_entropy;
mod norm;
mod packed;
mod rope;
mod skinny_matmul;
mod softmax;
mod swiglu;
pub(crate) mod trace;
mod vec_math;

pub use attend::attend;
pub use attention_probs::attention_probs;
pub use attention_softmax::{attention_softmax, attention_softmax_lean};
pub use batched_matmul::batched_matmul;
pub use frozen_linear::{frozen_affine, frozen_linear, FrozenLinear};
pub use gelu::{gelu, gelu_lean};
pub use lm_cross_entropy::{lm_cross_entropy, lm_cross_entropy_with};
pub use norm::{layer_norm, rms_norm, rms_norm_lean};
pub use rope::{apply_rope, apply_rope_lean, host_tables, RopeTables};
pub use softmax::{log_softmax_last, softmax_last};
pub use swiglu::{swiglu, swiglu_lean};
pub use trace::{set_trace, take_trace};
pub(crate) use attach::{attach1, attach2, attach3};
pub(crate) use attention_probs::attention_probs_vjp;
#[cfg(feature = "cuda")]
pub(crate) use cuda_fused::{adamw as fused_adamw, adamw_applies as fused_adamw_applies};
#[cfg(feature = "cuda")]
pub(crate) use cuda_fused::{squared_norms as fused_squared_norms, squared_norms_apply as fused_squared_norms_apply};
#[cfg(feature = "cuda")]
pub(crate) use cuda_fused::{gather_rows as fused_gather_rows, rows_add as fused_rows_add, rows_add_applies as fused_rows_add_applies};
pub use frozen_linear::frozen_linear_vjp;
pub(crate) use norm::{add_rms_norm, rms_norm_vjp, rms_norm_vjp_add};
pub(crate) use packed::{qkv_heads, qkv_heads_into_cache, qkv_into_cache_applies, qkv_rows_vjp, swiglu_packed, swiglu_packed_vjp};
pub(crate) use rope::{rope_heads, rope_vjp_rows};
pub(crate) use swiglu::swiglu_vjp;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// A process-wide on/off setting with an environment variable for its first value.
pub(crate) struct Switch {
    /// 0: not decided yet (read `var`), 1: off, 2: on.
    state: AtomicU8,
    var: &'static str,
    default: bool,
}

impl Switch {
    pub(crate) const fn new(var: &'static str, default: bool) -> Self {
        Self { state: AtomicU8::new(0), var, default }
    }

    pub(crate) fn set(&self, on: bool) {
        self.state.store(if on { 2 } else { 1 }, Ordering::Relaxed);
    }

    /// `var=0` is off and `var=1` on; unset or anything else leaves the default.
    pub(crate) fn on(&self) -> bool {
        self.get().unwrap_or(self.default)
    }

    /// The setting when `set` or the variable gave one, else `None`.
    fn get(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            0 => {
                let v = match std::env::var(self.var).as_deref() {
                    Ok("0") => Some(false),
                    Ok("1") => Some(true),
                    _ => None,
                };
                if let Some(on) = v {
                    self.set(on);
                }
                v
            }
            v => Some(v == 2),
        }
    }
}

static FUSED_CUDA: Switch = Switch::new("REFT_CUDA_FUSED", true);
static BLOCK_OPS: Switch = Switch::new("REFT_BLOCK_OPS", false);
static KEEP_PROBS: Switch = Switch::new("REFT_KEEP_PROBS", false);
static RECOMPUTE_MLP: Switch = Switch::new("REFT_RECOMPUTE_MLP", false);
static PACK_PROJ: Switch = Switch::new("REFT_PACK_PROJ", false);
static GEMM_LT: Switch = Switch::new("REFT_GEMM_LT", false);
static STATIC_DECODE: Switch = Switch::new("REFT_STATIC_DECODE", true);
static DECODE_GRAPH: Switch = Switch::new("REFT_DECODE_GRAPH", false);

/// Turns the fused CUDA kernels (`reft-kernels`) on or off for the whole process, overriding
/// `REFT_CUDA_FUSED`. They are on by default since their first GPU run (an H200, 2026-11-27):
/// `examples/cuda_smoke.rs` matched the CPU with them as closely as without them, in f32 and
/// bf16. A build without the `cuda` feature ignores this.
pub fn set_fused_cuda_kernels(on: bool) {
    FUSED_CUDA.set(on);
}

/// Whether the fused CUDA kernels are on (`set_fused_cuda_kernels`, else on unless
/// `REFT_CUDA_FUSED=0`).
pub fn fused_cuda_kernels_on() -> bool {
    FUSED_CUDA.on()
}

/// Turns the block-level graph nodes of the Llama decoder (`models/llama_block.rs`: each
/// layer's attention and MLP as one node with a backward we write) on or off for the whole
/// process, overriding `REFT_BLOCK_OPS`. Off, every op is a node of candle's graph.
pub fn set_block_ops(on: bool) {
    BLOCK_OPS.set(on);
}

/// Whether the block-level nodes are on for tensors on `device`: as `set_block_ops` or
/// `REFT_BLOCK_OPS` (0 or 1) say, else on CUDA only. There kernel launches set a step's pace
/// and the op-by-op graph launched 7,625 kernels for a 1.1B step; on the CPU (2 cores) the two
/// measured within noise of each other, and the op-by-op graph is the one the CPU's ratios
/// against pyreft were measured with.
pub fn block_ops_on(device: &candle_core::Device) -> bool {
    BLOCK_OPS.get().unwrap_or(device.is_cuda())
}

/// Whether a block-level attention node keeps its probabilities for the backward (more memory)
/// instead of recomputing them from its queries and keys (the default; `REFT_KEEP_PROBS=1`
/// keeps them). Process-wide, as [`set_block_ops`].
pub fn set_keep_attention_probs(on: bool) {
    KEEP_PROBS.set(on);
}

/// Whether block-level attention nodes keep their probabilities ([`set_keep_attention_probs`]).
pub fn keep_attention_probs() -> bool {
    KEEP_PROBS.on()
}

/// Whether a block-level MLP node recomputes its gate and up projections in the backward
/// instead of keeping them (less memory: on the 7B anchor shape 172 MiB a layer, 5.4 GiB in
/// all, for two more GEMMs per layer). Off unless `REFT_RECOMPUTE_MLP=1`; process-wide, as
/// [`set_block_ops`]. Clears [`set_recompute_mlp_up`].
pub fn set_recompute_mlp(on: bool) {
    RECOMPUTE_MLP.set(on);
    RECOMPUTE_UP.store(0, Ordering::Relaxed);
}

/// Whether block-level MLP nodes recompute their projections ([`set_recompute_mlp`]).
pub fn recompute_mlp() -> bool {
    RECOMPUTE_MLP.on()
}

/// How many of the top layers' MLP nodes recompute up's projection ([`set_recompute_mlp_up`]):
/// `UNDECIDED` until `REFT_RECOMPUTE_MLP` is read, `ALL_LAYERS` for every layer, 0 for none.
static RECOMPUTE_UP: AtomicUsize = AtomicUsize::new(UNDECIDED);
const UNDECIDED: usize = usize::MAX;
const ALL_LAYERS: usize = usize::MAX - 1;

/// Whether a block-level MLP node keeps only its gate projection and recomputes up's in the
/// backward (`REFT_RECOMPUTE_MLP=up`): half of [`set_recompute_mlp`]'s saving (on the 7B anchor
/// shape 86 MiB a layer, 2.7 GiB in all) for one more GEMM per layer instead of two.
/// Process-wide; ignored while [`recompute_mlp`] is on. [`set_recompute_mlp_up_layers`] does
/// this on some layers only.
pub fn set_recompute_mlp_up(on: bool) {
    RECOMPUTE_UP.store(if on { ALL_LAYERS } else { 0 }, Ordering::Relaxed);
}

/// Recomputes up's projection in the MLP nodes of the top `n` layers only
/// (`REFT_RECOMPUTE_MLP=up:N`), keeping both projections below them: the memory saved grows by
/// one up projection per layer (86 MiB on the 7B anchor shape), and so does the cost (one GEMM
/// per layer), so a memory budget a little under the whole model's needs pays for the layers
/// it needs and no more. The top layers, because every layer above the lowest intervened one
/// keeps a graph: `n` layers always save `n` projections. 0 is off; `n` at or above the
/// model's layer count is [`set_recompute_mlp_up`]`(true)`.
pub fn set_recompute_mlp_up_layers(n: usize) {
    RECOMPUTE_UP.store(n.min(ALL_LAYERS), Ordering::Relaxed);
}

/// How many top layers recompute up's projection: `REFT_RECOMPUTE_MLP=up` is all of them and
/// `up:N` the top N; any other value none (a malformed `up:` value says so on stderr).
fn recompute_up_layers() -> usize {
    let n = RECOMPUTE_UP.load(Ordering::Relaxed);
    if n != UNDECIDED {
        return n;
    }
    let n = parse_recompute_up(std::env::var("REFT_RECOMPUTE_MLP").ok().as_deref()).unwrap_or_else(|v| {
        eprintln!("reft: warning: REFT_RECOMPUTE_MLP={v} is neither `up` nor `up:N` with N a layer count; recomputing nothing");
        0
    });
    set_recompute_mlp_up_layers(n);
    n
}

/// The top layers `REFT_RECOMPUTE_MLP`'s value asks to recompute up's projection on; a value
/// that starts `up:` without a count is an error (returned as it is).
fn parse_recompute_up(v: Option<&str>) -> std::result::Result<usize, String> {
    match v {
        Some("up") => Ok(ALL_LAYERS),
        Some(v) if v.starts_with("up:") => v[3..].parse::<usize>().map(|n| n.min(ALL_LAYERS)).map_err(|_| v.to_string()),
        _ => Ok(0),
    }
}

/// Whether block-level MLP nodes recompute up's projection on any layer
/// ([`set_recompute_mlp_up`], [`set_recompute_mlp_up_layers`]).
pub fn recompute_mlp_up() -> bool {
    recompute_up_layers() > 0
}

/// Whether the MLP node of `layer` (of `num_layers`) recomputes up's projection: one of the top
/// [`set_recompute_mlp_up_layers`] layers.
pub fn recompute_mlp_up_at(layer: usize, num_layers: usize) -> bool {
    layer + recompute_up_layers().min(num_layers) >= num_layers
}

/// Whether decoders loaded from now on pack each layer's q/k/v and gate/up weights into one
/// matrix each (`models/packed.rs`), overriding `REFT_PACK_PROJ`. Process-wide, as
/// [`set_block_ops`]; a decoder already loaded keeps what it has.
pub fn set_pack_projections(on: bool) {
    PACK_PROJ.set(on);
}

/// Whether a decoder loaded onto `device` packs its projections: as [`set_pack_projections`]
/// or `REFT_PACK_PROJ` (0 or 1) say, else on CUDA only. There it is one GEMM in place of three
/// (and two), and one fused kernel in place of the rotations and copies around them, in every
/// forward and backward; on the CPU the separate weights keep `FrozenLinear`'s input-major
/// layout for the narrow key and value projections, which the packed matrix would lose.
pub fn pack_projections_on(device: &candle_core::Device) -> bool {
    PACK_PROJ.get().unwrap_or(device.is_cuda())
}

/// Runs the frozen-weight GEMMs of bf16/f16 tensors on CUDA through cuBLASLt
/// (`cuda_fused/gemm.rs`) instead of candle's cuBLAS call, overriding `REFT_GEMM_LT`. Off by
/// default until a GPU run has measured it (`examples/gemm_bench.rs`); ignored on the CPU and
/// in builds without the `cuda` feature.
pub fn set_gemm_lt(on: bool) {
    GEMM_LT.set(on);
}

/// Whether the cuBLASLt path is on ([`set_gemm_lt`]).
pub fn gemm_lt_on() -> bool {
    GEMM_LT.on()
}

/// Decodes on CUDA with the static step (`decode/`: 8 kernels per layer into buffers made once,
/// no candle op per token) where it applies, overriding `REFT_STATIC_DECODE`. On by default:
/// `tests/decode_step.rs` proves it through the kernels' emulation and `examples/cuda_smoke.rs`
/// compares its tokens with the CPU's on a GPU. Off, generation runs through candle's ops.
pub fn set_static_decode(on: bool) {
    STATIC_DECODE.set(on);
}

/// Whether the static decoding step is on ([`set_static_decode`]).
pub fn static_decode_on() -> bool {
    STATIC_DECODE.on()
}

/// Replays the static decoding step as a CUDA graph captured on a generation's first step
/// (`decode/cuda.rs`), overriding `REFT_DECODE_GRAPH`. Off by default until a GPU run has
/// measured it; a capture that fails decodes without the graph.
pub fn set_decode_graph(on: bool) {
    DECODE_GRAPH.set(on);
}

/// Whether the static decoding step replays a CUDA graph ([`set_decode_graph`]).
pub fn decode_graph_on() -> bool {
    DECODE_GRAPH.on()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recompute_up_values() {
        assert_eq!(parse_recompute_up(Some("up")), Ok(ALL_LAYERS));
        assert_eq!(parse_recompute_up(Some("up:12")), Ok(12));
        assert_eq!(parse_recompute_up(Some("up:0")), Ok(0));
        assert_eq!(parse_recompute_up(Some("1")), Ok(0), "=1 is the gate and up both, another switch");
        assert_eq!(parse_recompute_up(None), Ok(0));
        assert_eq!(parse_recompute_up(Some("up:all")), Err("up:all".to_string()));
        assert_eq!(parse_recompute_up(Some("up:-1")), Err("up:-1".to_string()));
    }
}
