//! The dropout keep mask made on the device (`reft_dropout_mask_f32`): the host draws one key per
//! mask, and the kernel computes each element from the key and its index with the integer
//! arithmetic of `interventions::common::keep_bit`, so the CPU and CUDA masks are the same bits.

use super::{config, cuda_of, kernel, view};
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{DType, Device, Result, Tensor};

/// The dropout keep mask of `n` f32 elements, made on the device (`reft_dropout_mask_f32`; the
/// host's `interventions::common::keep_bit` gives the same bits).
pub(crate) fn dropout_mask(n: usize, key: u64, threshold: u32, scale: f32, device: &Device) -> Result<Tensor> {
    let Device::Cuda(dev) = device else { candle_core::bail!("fused dropout mask: not on a CUDA device") };
    let out = Tensor::zeros(n, DType::F32, device)?;
    {
        let (os, ol) = out.storage_and_layout();
        let ov = view::<f32>(cuda_of(&os, "the mask")?, &ol, "the mask")?;
        let func = kernel(dev, "dropout_mask", DType::F32)?;
        let stream = dev.cuda_stream();
        let mut lb = stream.launch_builder(&func);
        lb.arg(&ov).arg(&n).arg(&key).arg(&threshold).arg(&scale);
        unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
    }
    Ok(out)
}
