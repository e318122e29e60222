//! Batched matmul `[..., m, k] · [..., k, n]` for attention, parallel over the batch on the CPU.
//!
//! candle's CPU matmul walks the batch sequentially and splits each GEMM across the threads.
//! Attention's GEMMs are many and small (MiniLM at 32 × 220 tokens: 384 products of
//! 220 × 32 × 220 per layer), so every one pays a thread fork/join for a few microseconds of
//! work. Here each GEMM runs on one thread and the batch is spread over the pool instead. The
//! backward is the same op: `∂A = ∂C·Bᵀ`, `∂B = Aᵀ·∂C`.
//!
//! Other devices and dtypes (CUDA, half precision) and small batches use candle's matmul.

use candle_core::{backend::BackendStorage, CpuStorage, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct BatchedMatmul;

/// `(batch, m, n, k)` and the output shape of two `[..., m, k]`, `[..., k, n]` operands.
fn dims(a: &Layout, b: &Layout) -> Result<(usize, usize, usize, usize, Shape)> {
    let (ad, bd) = (a.dims(), b.dims());
    let r = ad.len();
    if r < 2 || bd.len() != r || ad[..r - 2] != bd[..r - 2] || ad[r - 1] != bd[r - 2] {
        candle_core::bail!("batched_matmul: shapes {ad:?} and {bd:?} do not multiply");
    }
    let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
    let batch = ad[..r - 2].iter().product();
    let mut out = ad.to_vec();
    out[r - 1] = n;
    Ok((batch, m, n, k, Shape::from(out)))
}

/// `batch` row-major GEMMs `[m, k] · [k, n]` spread over the thread pool, one thread each; with
/// `b_transposed` each `b` is stored `[n, k]` and read as its transpose.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemms<T: Copy + Default + Send + Sync + 'static>(
    a: &[T],
    b: &[T],
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    b_transposed: bool,
    one: T,
) -> Vec<T> {
    let (rhs_cs, rhs_rs) = if b_transposed { (k as isize, 1) } else { (1, n as isize) };
    let mut out = vec![T::default(); batch * m * n];
    out.par_chunks_mut((m * n).max(1)).enumerate().for_each(|(i, dst)| {
        let (lhs, rhs) = (&a[i * m * k..], &b[i * k * n..]);
        // SAFETY: row-major contiguous operands and destination of exactly these sizes.
        unsafe {
            gemm::gemm(
                m, n, k,
                dst.as_mut_ptr(), 1, n as isize, false,
                lhs.as_ptr(), 1, k as isize,
                rhs.as_ptr(), rhs_cs, rhs_rs,
                T::default(), one,
                false, false, false,
                gemm::Parallelism::None,
            )
        }
    });
    out
}

impl CustomOp2 for BatchedMatmul {
    fn name(&self) -> &'static str {
        "batched-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, m, n, k, shape) = dims(l1, l2)?;
        let (o1, o2) = match (l1.contiguous_offsets(), l2.contiguous_offsets()) {
            (Some(a), Some(b)) => (a, b),
            _ => candle_core::bail!("batched_matmul: operands must be contiguous"),
        };
        let out = match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(gemms(&a[o1.0..o1.1], &b[o2.0..o2.1], batch, m, n, k, false, 1f32)),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(gemms(&a[o1.0..o1.1], &b[o2.0..o2.1], batch, m, n, k, false, 1f64)),
            _ => candle_core::bail!("batched_matmul: f32 or f64 operands of one dtype expected"),
        };
        Ok((out, shape))
    }

    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let (batch, m, n, k, shape) = dims(l1, l2)?;
        Ok((s1.matmul(s2, (batch, m, n, k), l1, l2)?, shape))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let r = a.rank();
        let ga = batched_matmul(grad, &b.transpose(r - 2, r - 1)?)?;
        let gb = batched_matmul(&a.transpose(r - 2, r - 1)?, grad)?;
        Ok((Some(ga), Some(gb)))
    }
}

/// `a · b` over the last two dimensions, with equal leading (batch) dimensions.
pub fn batched_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let batch: usize = a.dims().iter().rev().skip(2).product();
    let parallel = a.device().is_cpu()
        && matches!(a.dtype(), DType::F32 | DType::F64)
        && a.dtype() == b.dtype()
        && a.rank() >= 3
        && batch >= 2 * rayon::current_num_threads();
    if !parallel {
        return a.matmul(b);
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, BatchedMatmul)
}
