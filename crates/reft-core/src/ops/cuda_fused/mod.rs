//! The fused kernels of `reft-kernels` (`kernels/fused.cu`) as candle ops on CUDA: the attention
//! softmax with scale and mask, RMSNorm, RoPE and SwiGLU, each one kernel forward and one kernel
//! backward, where the lean path (`attach.rs`) launches 5 to 15 of candle's kernels and makes
//! f32 copies of the tensor in between.
//!
//! On by default (`REFT_CUDA_FUSED=0` turns them off): the kernels are proved on the CPU through
//! their emulation (`tests/cuda_kernels.rs`), and this launch code, which runs only on a GPU,
//! passed `cuda_smoke` against the CPU on its first GPU run (an H200, 2026-11-27).

use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaView, DeviceRepr, LaunchConfig};
use candle_core::cuda_backend::CudaDType;
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Result, Storage, Tensor};

mod adamw;
mod attention;
mod decode;
mod dropout;
mod gemm;
mod packed;
mod rows;
mod rows_add;

pub(crate) use adamw::{adamw, adamw_applies, squared_norms, squared_norms_apply};
pub(crate) use dropout::dropout_mask;
pub(crate) use attention::{attention_softmax, attention_softmax_backward};
pub(crate) use decode::{add_rms_norm, decode_attention};
pub(crate) use gemm::{applies as lt_applies, applies_storage as lt_applies_storage, linear as lt_linear, linear_storage as lt_linear_storage};
pub(crate) use packed::{qkv_heads, qkv_heads_into_cache, qkv_rows_grad, swiglu_packed, swiglu_packed_vjp};
pub(crate) use rows_add::{gather_rows, rows_add, rows_add_applies};
pub(crate) use rows::{apply_rope, rms_norm, rms_norm_backward, rms_norm_backward_add, rope_backward, rope_backward_to_rows, rope_from_rows, swiglu, swiglu_backward};

/// Whether `t` takes the fused kernels: on CUDA, in f32, bf16 or f16, and switched on
/// (`super::set_fused_cuda_kernels`, else unless `REFT_CUDA_FUSED=0`).
pub(crate) fn applies(t: &Tensor) -> bool {
    t.device().is_cuda() && matches!(t.dtype(), DType::F32 | DType::BF16 | DType::F16) && super::fused_cuda_kernels_on()
}

/// Runs `$body` with `$t` bound to the Rust type of `$dtype`.
macro_rules! per_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::BF16 => {
                type $t = half::bf16;
                $body
            }
            candle_core::DType::F16 => {
                type $t = half::f16;
                $body
            }
            other => candle_core::bail!("fused CUDA kernels: no {other:?} kernel"),
        }
    };
}
pub(super) use per_dtype;

pub(crate) fn kernel(dev: &CudaDevice, name: &str, dtype: DType) -> Result<CudaFunction> {
    let suffix = match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        other => candle_core::bail!("fused CUDA kernels: no {other:?} kernel"),
    };
    Ok(dev.get_or_load_custom_func(&format!("reft_{name}_{suffix}"), "reft_fused", reft_kernels::PTX)?.into_cuda_function())
}

pub(crate) fn config((grid, block): (u32, u32)) -> LaunchConfig {
    LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 }
}

/// The contiguous elements of a storage under its layout.
pub(super) fn view<'a, T: CudaDType + DeviceRepr>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.as_cuda_slice::<T>()?.slice(a..b)),
        None => candle_core::bail!("fused CUDA kernels: {what} is not contiguous"),
    }
}

pub(super) fn cuda_of<'a>(s: &'a Storage, what: &str) -> Result<&'a CudaStorage> {
    match s {
        Storage::Cuda(c) => Ok(c),
        _ => candle_core::bail!("fused CUDA kernels: {what} is not on the CUDA device"),
    }
}

/// Fails unless `l` has the dimensions `dims`: the kernels index their operands by the first
/// operand's shape and would read out of bounds, not fail, on a mismatch.
pub(super) fn expect_dims(l: &Layout, dims: &[usize], what: &str) -> Result<()> {
    if l.dims() != dims {
        candle_core::bail!("fused CUDA kernels: {what} is {:?}, expected {dims:?}", l.dims());
    }
    Ok(())
}

pub(super) fn i32_of(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("fused CUDA kernels: {what} {v} exceeds i32")))
}
