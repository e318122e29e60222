//! Frozen-weight GEMMs through cuBLASLt (`REFT_GEMM_LT=1`, off by default until a GPU run has
//! measured it against candle's path).
//!
//! candle runs every matmul as `cublasGemmStridedBatchedEx` on a handle without a workspace of
//! ours; PyTorch runs the same bf16 products through cuBLASLt with a 32 MiB workspace on Hopper
//! and its heuristic's first algorithm. Our 7B forward took 0.152 s against HF's 0.121 s in
//! the same run, most of it GEMMs, so this is the path to compare (`examples/gemm_bench.rs`
//! times both against each other and checks that they agree). bf16 and f16 only: cuBLASLt's
//! f32 path would compute in TF32, which the CPU parity does not allow.
//!
//! Row-major `Y = X·Wᵀ` is column-major `Yᵀ = W·Xᵀ` with `W` read transposed; the backward's
//! `dX = G·W` is `dXᵀ = Wᵀ·Gᵀ` with nothing transposed.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::cublaslt::{CudaBlasLT, Matmul, MatmulConfig};
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaStream, CudaView, DevicePtr};
use candle_core::cuda_backend::CudaDType;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One cuBLASLt handle and workspace per stream (reft's devices share one stream each).
fn handle(dev: &candle_core::CudaDevice) -> Result<Arc<CudaBlasLT>> {
    static HANDLES: OnceLock<Mutex<HashMap<usize, Arc<CudaBlasLT>>>> = OnceLock::new();
    let stream = dev.cuda_stream();
    let key = Arc::as_ptr(&stream) as usize;
    let mut map = HANDLES.get_or_init(Default::default).lock().map_err(|_| candle_core::Error::Msg("cuBLASLt handles poisoned".into()))?;
    if let Some(h) = map.get(&key) {
        return Ok(h.clone());
    }
    let h = Arc::new(CudaBlasLT::new(stream).map_err(|e| candle_core::Error::Msg(format!("cuBLASLt: {e:?}")))?);
    map.insert(key, h.clone());
    Ok(h)
}

/// Whether `x` `[.., k]` and the frozen weight `w` `[n, k]` take the cuBLASLt path.
pub(crate) fn applies(x: &Tensor, w: &Tensor) -> bool {
    crate::ops::gemm_lt_on() && x.device().is_cuda() && matches!(x.dtype(), DType::BF16 | DType::F16) && w.dtype() == x.dtype() && w.rank() == 2 && w.is_contiguous()
}

/// [`applies`] for the graph's frozen-linear op, which has the input's storage.
pub(crate) fn applies_storage(dtype: DType, w: &Tensor) -> bool {
    crate::ops::gemm_lt_on() && matches!(dtype, DType::BF16 | DType::F16) && w.dtype() == dtype && w.rank() == 2 && w.is_contiguous()
}

/// `x·Wᵀ` on storages (the graph's frozen-linear op, `frozen_linear.rs`).
pub(crate) fn linear_storage(x: &CudaStorage, lx: &Layout, w: &CudaStorage, lw: &Layout) -> Result<(CudaStorage, Shape)> {
    LtLinear { backward: false }.cuda_fwd(x, lx, w, lw)
}

/// `x·Wᵀ` (`backward` false: `x` `[.., k]`, `W` `[n, k]`) or `g·W` (`backward` true: `g`
/// `[.., n]`), no graph.
pub(crate) fn linear(x: &Tensor, w: &Tensor, backward: bool) -> Result<Tensor> {
    x.contiguous()?.apply_op2_no_bwd(w, &LtLinear { backward })
}

/// Whether element `offset` of `s` lies on a 256-byte boundary.
fn aligned<T>(s: &CudaSlice<T>, offset: usize, stream: &Arc<CudaStream>) -> bool {
    let (ptr, _sync) = s.device_ptr(stream);
    (ptr as usize + offset * std::mem::size_of::<T>()) % 256 == 0
}

struct LtLinear {
    backward: bool,
}

impl LtLinear {
    fn run<T: CudaDType + candle_core::cuda_backend::cudarc::driver::DeviceRepr>(
        &self,
        lt: &CudaBlasLT,
        dev: &candle_core::CudaDevice,
        x: CudaView<'_, T>,
        w: CudaView<'_, T>,
        (m, n, k): (usize, usize, usize),
    ) -> Result<CudaSlice<T>>
    where
        CudaBlasLT: Matmul<T>,
        for<'a> CudaView<'a, T>: DevicePtr<T>,
    {
        // Forward: Yᵀ[n, m] = op(W)·Xᵀ with W stored [n, k] (column-major k×n, transposed).
        // Backward: dXᵀ[k, m] = W(k×n column-major)·Gᵀ(n×m).
        let cfg = if self.backward {
            MatmulConfig { transa: false, transb: false, transc: false, m: k as u64, n: m as u64, k: n as u64, alpha: 1.0, lda: k as i64, ldb: n as i64, beta: 0.0, ldc: k as i64, stride_a: None, stride_b: None, stride_c: None, stride_bias: None, batch_size: None }
        } else {
            MatmulConfig { transa: true, transb: false, transc: false, m: n as u64, n: m as u64, k: k as u64, alpha: 1.0, lda: k as i64, ldb: k as i64, beta: 0.0, ldc: n as i64, stride_a: None, stride_b: None, stride_c: None, stride_bias: None, batch_size: None }
        };
        let mut out = unsafe { dev.alloc::<T>(if self.backward { m * k } else { m * n })? };
        unsafe { lt.matmul(cfg, &w, &x, &mut out, None, None) }.map_err(|e| candle_core::Error::Msg(format!("cuBLASLt matmul: {e:?}")))?;
        Ok(out)
    }
}

impl CustomOp2 for LtLinear {
    fn name(&self) -> &'static str {
        "lt-linear"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("lt-linear runs on CUDA only")
    }

    fn cuda_fwd(&self, x: &CudaStorage, lx: &Layout, w: &CudaStorage, lw: &Layout) -> Result<(CudaStorage, Shape)> {
        let (n, k) = lw.shape().dims2()?;
        let inner = if self.backward { n } else { k };
        let dims = lx.dims();
        if dims.last() != Some(&inner) {
            candle_core::bail!("lt-linear: input {dims:?} against a weight [{n}, {k}]");
        }
        let (Some((xa, xb)), Some((wa, wb))) = (lx.contiguous_offsets(), lw.contiguous_offsets()) else {
            candle_core::bail!("lt-linear: operands must be contiguous");
        };
        let m = lx.shape().elem_count() / inner.max(1);
        let dev = x.device().clone();
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("checked") = if self.backward { k } else { n };
        // cudarc asks cuBLASLt's heuristic without alignment preferences, so the algorithm it
        // picks may assume 256-byte-aligned operands; a view at another offset (or no rows at
        // all) takes candle's GEMM instead.
        let stream = dev.cuda_stream();
        let lt_ok = m > 0
            && match x.dtype() {
                DType::BF16 => aligned(x.as_cuda_slice::<half::bf16>()?, xa, &stream) && aligned(w.as_cuda_slice::<half::bf16>()?, wa, &stream),
                DType::F16 => aligned(x.as_cuda_slice::<half::f16>()?, xa, &stream) && aligned(w.as_cuda_slice::<half::f16>()?, wa, &stream),
                _ => false,
            };
        if !lt_ok {
            let out = if self.backward {
                x.matmul(w, (1, m, k, n), &Layout::contiguous_with_offset((m, n), xa), lw)?
            } else {
                x.matmul(w, (1, m, n, k), &Layout::contiguous_with_offset((m, k), xa), &lw.transpose(0, 1)?)?
            };
            return Ok((out, Shape::from(out_dims)));
        }
        let lt = handle(&dev)?;
        let out = match x.dtype() {
            DType::BF16 => {
                let s = self.run::<half::bf16>(&lt, &dev, x.as_cuda_slice()?.slice(xa..xb), w.as_cuda_slice()?.slice(wa..wb), (m, n, k))?;
                CudaStorage::wrap_cuda_slice(s, dev.clone())
            }
            DType::F16 => {
                let s = self.run::<half::f16>(&lt, &dev, x.as_cuda_slice()?.slice(xa..xb), w.as_cuda_slice()?.slice(wa..wb), (m, n, k))?;
                CudaStorage::wrap_cuda_slice(s, dev.clone())
            }
            other => candle_core::bail!("lt-linear: no {other:?} path"),
        };
        Ok((out, Shape::from(out_dims)))
    }
}
