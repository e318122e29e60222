//! The attention softmax on CUDA in one kernel each way: `p = softmax(scale·s + mask)` with the
//! mask read per key row or per query row, and `ds = scale·p ⊙ (g − Σ g ⊙ p)`, both in f32
//! registers whatever the storage type (`kernels/fused.cu`).

use super::{config, cuda_of, expect_dims, i32_of, kernel, per_dtype, view};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CpuStorage, CudaStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};


struct AttnSoftmax {
    scale: f32,
    /// f32, contiguous `[b, 1, mask_rows, k]`.
    mask: Tensor,
    mask_rows: usize,
}

impl CustomOp1 for AttnSoftmax {
    fn name(&self) -> &'static str {
        "fused-attention-softmax"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("fused-attention-softmax runs on CUDA only")
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let (b, h, q, k) = l.shape().dims4()?;
        let dev = s.device().clone();
        let (ms, ml) = self.mask.storage_and_layout();
        if self.mask_rows != 1 && self.mask_rows != q {
            candle_core::bail!("fused attention softmax: {} mask rows for {q} queries", self.mask_rows);
        }
        expect_dims(ml, &[b, 1, self.mask_rows, k], "the mask")?;
        let mask = view::<f32>(cuda_of(&ms, "the mask")?, ml, "the mask")?;
        let rows = b * h * q;
        let func = kernel(&dev, "attn_softmax_fwd", s.dtype())?;
        let out = per_dtype!(s.dtype(), T => {
            let src = view::<T>(s, l, "the scores")?;
            let dst = unsafe { dev.alloc::<T>(l.shape().elem_count())? };
            let (ki, qi, hi, mi) = (i32_of(k, "k")?, i32_of(q, "q")?, i32_of(h, "heads")?, i32_of(self.mask_rows, "mask rows")?);
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&src).arg(&mask).arg(&dst).arg(&rows).arg(&ki).arg(&qi).arg(&hi).arg(&mi).arg(&self.scale);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _scores: &Tensor, p: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(p.apply_op2_no_bwd(&g.contiguous()?, &AttnSoftmaxBwd { scale: self.scale })?))
    }
}

struct AttnSoftmaxBwd {
    scale: f32,
}

impl CustomOp2 for AttnSoftmaxBwd {
    fn name(&self) -> &'static str {
        "fused-attention-softmax-bwd"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("fused-attention-softmax-bwd runs on CUDA only")
    }

    fn cuda_fwd(&self, p: &CudaStorage, lp: &Layout, g: &CudaStorage, lg: &Layout) -> Result<(CudaStorage, Shape)> {
        expect_dims(lg, lp.dims(), "the gradient")?;
        let k = *lp.dims().last().unwrap_or(&1);
        let rows = lp.shape().elem_count() / k.max(1);
        let dev = p.device().clone();
        let func = kernel(&dev, "attn_softmax_bwd", p.dtype())?;
        let out = per_dtype!(p.dtype(), T => {
            let (pv, gv) = (view::<T>(p, lp, "the probabilities")?, view::<T>(g, lg, "the gradient")?);
            let dst = unsafe { dev.alloc::<T>(lp.shape().elem_count())? };
            let ki = i32_of(k, "k")?;
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&pv).arg(&gv).arg(&dst).arg(&rows).arg(&ki).arg(&self.scale);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, lp.shape().clone()))
    }
}

/// `softmax(scale · scores + mask)`, `scores` `[b, h, q, k]`, `mask` additive `[b, 1, 1|q, k]`.
pub(crate) fn attention_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (_, _, mask_rows, _) = mask.dims4()?;
    let mask = mask.to_dtype(DType::F32)?.contiguous()?;
    scores.contiguous()?.apply_op1(AttnSoftmax { scale: scale as f32, mask, mask_rows })
}

/// The input gradient of [`attention_softmax`] from its output `p` and the output's gradient `g`.
pub(crate) fn attention_softmax_backward(p: &Tensor, g: &Tensor, scale: f64) -> Result<Tensor> {
    p.contiguous()?.apply_op2_no_bwd(&g.contiguous()?, &AttnSoftmaxBwd { scale: scale as f32 })
}
