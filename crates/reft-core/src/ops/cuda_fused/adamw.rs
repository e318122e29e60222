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

/// Whether [`squared_norms`] takes `grads`: all f32, contiguous, on one CUDA device, fused on.
pub(crate) fn squared_norms_apply(grads: &[Tensor]) -> bool {
    grads.first().is_some_and(|f| grads.iter().all(|g| super::applies(g) && g.dtype() == DType::F32 && g.is_contiguous() && g.device().same_device(f.device())))
}

/// The squared L2 norm of each gradient: one warp's kernel each (`reft_sum_squares_f32`) into
/// its slot of one buffer, then one copy to the host.
pub(crate) fn squared_norms(grads: &[Tensor]) -> Result<Vec<f64>> {
    let Some(first) = grads.first() else { return Ok(Vec::new()) };
    let Device::Cuda(dev) = first.device() else { candle_core::bail!("fused gradient norm: not on a CUDA device") };
    let out = Tensor::zeros(grads.len(), DType::F32, first.device())?;
    {
        let (os, ol) = out.storage_and_layout();
        let ov = view::<f32>(cuda_of(&os, "the norms")?, &ol, "the norms")?;
        let func = kernel(dev, "sum_squares", DType::F32)?;
        let stream = dev.cuda_stream();
        for (slot, g) in grads.iter().enumerate() {
            let (gs, gl) = g.storage_and_layout();
            let gv = view::<f32>(cuda_of(&gs, "a gradient")?, &gl, "a gradient")?;
            let n = g.elem_count();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&gv).arg(&n).arg(&ov).arg(&slot);
            unsafe { lb.launch(config((1, 32))) }.w()?;
        }
    }
    Ok(out.to_vec1::<f32>()?.into_iter().map(f64::from).collect())
}
