//! Inference-only kernels of a decoding step (`kernels/fused.cu`): the attention of a few query
//! rows against the cached keys and values in one kernel (`reft_decode_attn`), and the residual
//! add fused with the RMSNorm after it (`reft_add_rmsnorm_fwd`). No graph, no backward.

use super::{config, cuda_of, expect_dims, i32_of, kernel, per_dtype, view};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CpuStorage, CudaStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

struct DecodeAttn {
    /// f32, contiguous `[b, tk]` (the additive key mask of a decoding step).
    mask: Tensor,
    scale: f32,
}

/// The spacing in positions between heads of keys/values `[b, nkv, tk, hd]` whose rows are
/// contiguous (a view of a reserved cache, or a contiguous tensor): `attend::cache_head_spacing`,
/// which `attend` checks before it takes this path.
fn head_spacing(l: &Layout, what: &str) -> Result<usize> {
    crate::ops::attend::cache_head_spacing(l.dims(), l.stride())
        .ok_or_else(|| candle_core::Error::Msg(format!("fused decode attention: {what} {:?} with strides {:?} are not rows of a cache", l.dims(), l.stride())))
}

impl CustomOp3 for DecodeAttn {
    fn name(&self) -> &'static str {
        "fused-decode-attention"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("fused-decode-attention runs on CUDA only")
    }

    fn cuda_fwd(&self, q: &CudaStorage, lq: &Layout, k: &CudaStorage, lk: &Layout, v: &CudaStorage, lv: &Layout) -> Result<(CudaStorage, Shape)> {
        let (b, nkv, g, hd) = lq.shape().dims4()?;
        let tk = lk.dims()[2];
        expect_dims(lk, &[b, nkv, tk, hd], "the keys")?;
        expect_dims(lv, &[b, nkv, tk, hd], "the values")?;
        let (kcap, vcap) = (head_spacing(lk, "the keys")?, head_spacing(lv, "the values")?);
        if kcap != vcap || hd > 256 || q.dtype() != k.dtype() || k.dtype() != v.dtype() {
            candle_core::bail!("fused decode attention: keys {kcap} and values {vcap} apart, head size {hd}, dtypes {:?}/{:?}/{:?}", q.dtype(), k.dtype(), v.dtype());
        }
        let (ms, ml) = self.mask.storage_and_layout();
        expect_dims(ml, &[b, tk], "the mask")?;
        let mask = view::<f32>(cuda_of(&ms, "the mask")?, ml, "the mask")?;
        let rows = b * nkv * g;
        let dev = q.device().clone();
        let func = kernel(&dev, "decode_attn", q.dtype())?;
        let out = per_dtype!(q.dtype(), T => {
            let qv = view::<T>(q, lq, "the queries")?;
            let span = ((b - 1) * nkv * kcap + (nkv - 1) * kcap + tk) * hd;
            let kv = k.as_cuda_slice::<T>()?.slice(lk.start_offset()..lk.start_offset() + span);
            let vv = v.as_cuda_slice::<T>()?.slice(lv.start_offset()..lv.start_offset() + span);
            let dst = unsafe { dev.alloc::<T>(rows * hd)? };
            let (gi, ni, ti, ci, di) = (i32_of(g, "g")?, i32_of(nkv, "kv heads")?, i32_of(tk, "keys")?, i32_of(kcap, "capacity")?, i32_of(hd, "head_dim")?);
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&qv).arg(&kv).arg(&vv).arg(&mask).arg(&dst).arg(&rows).arg(&gi).arg(&ni).arg(&ti).arg(&ci).arg(&di).arg(&self.scale);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, lq.shape().clone()))
    }
}

/// `softmax(scale·q·kᵀ + mask)·v` for query rows `q` `[b, nkv, g, hd]` sharing one key mask
/// per sequence (`mask` f32 `[b, 1, 1, tk]`), keys and values `[b, nkv, tk, hd]` (views of a
/// reserved cache allowed), in one kernel; no graph.
pub(crate) fn decode_attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, tk) = (mask.dim(0)?, mask.dim(3)?);
    let op = DecodeAttn { mask: mask.to_dtype(DType::F32)?.reshape((b, tk))?.contiguous()?, scale: scale as f32 };
    q.detach().contiguous()?.apply_op3_no_bwd(&k.detach(), &v.detach(), &op)
}

struct AddRmsNormOp {
    eps: f32,
}

impl CustomOp3 for AddRmsNormOp {
    fn name(&self) -> &'static str {
        "fused-add-rms-norm"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("fused-add-rms-norm runs on CUDA only")
    }

    /// `x`, `r` `[.., d]` and the gain `w` `[d]` → `[2, .., d]`: the sum, then its norm.
    fn cuda_fwd(&self, x: &CudaStorage, lx: &Layout, r: &CudaStorage, lr: &Layout, w: &CudaStorage, lw: &Layout) -> Result<(CudaStorage, Shape)> {
        let d = lw.shape().elem_count();
        if lx.dims().last() != Some(&d) {
            candle_core::bail!("fused add + RMSNorm: rows of {:?} against a gain of {d}", lx.dims());
        }
        expect_dims(lr, lx.dims(), "the residual")?;
        let n = lx.shape().elem_count();
        let rows = n / d.max(1);
        let dev = x.device().clone();
        let func = kernel(&dev, "add_rmsnorm_fwd", x.dtype())?;
        let out = per_dtype!(x.dtype(), T => {
            let (xv, rv, wv) = (view::<T>(x, lx, "x")?, view::<T>(r, lr, "the residual")?, view::<T>(w, lw, "the gain")?);
            let dst = unsafe { dev.alloc::<T>(2 * n)? };
            let (sv, yv) = (dst.slice(0..n), dst.slice(n..2 * n));
            let di = i32_of(d, "the row length")?;
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&xv).arg(&rv).arg(&wv).arg(&sv).arg(&yv).arg(&rows).arg(&di).arg(&self.eps);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            drop((sv, yv));
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        let mut dims = vec![2];
        dims.extend_from_slice(lx.dims());
        Ok((out, Shape::from(dims)))
    }
}

/// `(x + r, rms_norm(x + r, w))` in one kernel; no graph.
pub(crate) fn add_rms_norm(x: &Tensor, r: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    let both = x.detach().contiguous()?.apply_op3_no_bwd(&r.detach().contiguous()?, &w.contiguous()?, &AddRmsNormOp { eps: eps as f32 })?;
    Ok((both.get(0)?, both.get(1)?))
}
