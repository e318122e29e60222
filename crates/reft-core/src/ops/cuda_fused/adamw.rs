//! The AdamW update of an f32 parameter on CUDA, one kernel in place (`reft_adamw_f32`, see
//! `crate::adamw`): the parameter, as `Var::set` would write it, and its two moments, which the
//! optimizer owns and nothing else reads.

use super::{config, cuda_of, expect_dims, kernel, view};
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{DType, Device, Result, Tensor};

/// Whether [`adamw`] takes `p` and `others` (gradient, moments): CUDA, f32, contiguous, the same
/// shape, fused kernels on.
pub(crate) fn adamw_applies(p: &Tensor, others: &[&Tensor]) -> bool {
    super::applies(p)
        && p.dtype() == DType::F32
        && p.is_contiguous()
        && others.iter().all(|t| t.dtype() == DType::F32 && t.is_contiguous() && t.dims() == p.dims() && t.device().same_device(p.device()))
}

/// Updates `p`, `m` and `v` in place from the gradient `g`; `h` holds the kernel's scalars.
pub(crate) fn adamw(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, h: &[f32; 10]) -> Result<()> {
    let Device::Cuda(dev) = p.device() else { candle_core::bail!("fused AdamW: the parameter is not on a CUDA device") };
    let n = p.elem_count();
    let func = kernel(dev, "adamw", DType::F32)?;
    let (ps, pl) = p.storage_and_layout();
    let (gs, gl) = g.storage_and_layout();
    let (ms, ml) = m.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    for (l, what) in [(&gl, "the gradient"), (&ml, "the first moment"), (&vl, "the second moment")] {
        expect_dims(l, pl.dims(), what)?;
    }
    let pv = view::<f32>(cuda_of(&ps, "the parameter")?, &pl, "the parameter")?;
    let gv = view::<f32>(cuda_of(&gs, "the gradient")?, &gl, "the gradient")?;
    let mv = view::<f32>(cuda_of(&ms, "the first moment")?, &ml, "the first moment")?;
    let vv = view::<f32>(cuda_of(&vs, "the second moment")?, &vl, "the second moment")?;
    let stream = dev.cuda_stream();
    let mut lb = stream.launch_builder(&func);
    lb.arg(&pv).arg(&gv).arg(&mv).arg(&vv).arg(&n);
    for x in h {
        lb.arg(x);
    }
    unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
    Ok(())
}
