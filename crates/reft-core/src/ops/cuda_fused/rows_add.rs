//! An intervention's edit `h[rows] += delta` on CUDA: a copy of `h` and one kernel over the
//! edited elements (`reft_rows_add_*`), where candle's `index_add` runs one thread per column
//! looping over the rows. Used for the edits the block nodes apply and recompute
//! (`models/hooks.rs`) and for the backward of the rows' gather ([`gather_rows`]).

use super::{config, i32_of, kernel, per_dtype, view};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CpuStorage, CudaStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

struct RowsAdd;

impl CustomOp3 for RowsAdd {
    fn name(&self) -> &'static str {
        "fused-rows-add"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("fused-rows-add runs on CUDA only")
    }

    fn cuda_fwd(&self, h: &CudaStorage, lh: &Layout, rows: &CudaStorage, lr: &Layout, delta: &CudaStorage, ld: &Layout) -> Result<(CudaStorage, Shape)> {
        let (nh, d) = lh.shape().dims2()?;
        let (n, dd) = ld.shape().dims2()?;
        if dd != d || lr.dims() != [n] || rows.dtype() != DType::U32 || delta.dtype() != h.dtype() {
            candle_core::bail!("fused rows add: h {:?} {:?}, rows {:?} {:?}, edit {:?} {:?}", lh.dims(), h.dtype(), lr.dims(), rows.dtype(), ld.dims(), delta.dtype());
        }
        let dev = h.device().clone();
        let func = kernel(&dev, "rows_add", h.dtype())?;
        let out = per_dtype!(h.dtype(), T => {
            let (hv, dv) = (view::<T>(h, lh, "h")?, view::<T>(delta, ld, "the edit")?);
            let rv = view::<u32>(rows, lr, "the rows")?;
            let stream = dev.cuda_stream();
            let out = stream.clone_dtod(&hv).w()?;
            let (total, di) = (n * d, i32_of(d, "the row length")?);
            let mut lb = stream.launch_builder(&func);
            lb.arg(&hv).arg(&dv).arg(&rv).arg(&out).arg(&total).arg(&di).arg(&nh);
            unsafe { lb.launch(config(reft_kernels::elementwise_launch(total))) }.w()?;
            CudaStorage::wrap_cuda_slice(out, dev.clone())
        });
        Ok((out, lh.shape().clone()))
    }
}

/// Whether [`rows_add`] takes `h` and `delta`: CUDA, one dtype with a fused kernel, on.
pub(crate) fn rows_add_applies(h: &Tensor, delta: &Tensor) -> bool {
    super::applies(h) && delta.dtype() == h.dtype()
}

/// `h` `[nh, d]` with rows `rows` (u32, unique, `< nh`) moved by `delta` `[rows, d]`; no graph.
pub(crate) fn rows_add(h: &Tensor, rows: &Tensor, delta: &Tensor) -> Result<Tensor> {
    let h = h.detach().contiguous()?;
    h.apply_op3_no_bwd(&rows.contiguous()?, &delta.detach().contiguous()?, &RowsAdd)
}

/// `flat[rows]` (`flat` `[nh, d]`) whose backward scatters with [`rows_add`] instead of
/// candle's `index_add`.
pub(crate) fn gather_rows(flat: &Tensor, rows: &Tensor) -> Result<Tensor> {
    let value = flat.detach().index_select(rows, 0)?;
    let rows = rows.clone();
    crate::ops::attach1("gather-rows", flat, value, move |flat, _y, g| Ok(Some(rows_add(&flat.zeros_like()?, &rows, g)?)))
}
