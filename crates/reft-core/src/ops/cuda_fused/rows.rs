//! RMSNorm (one warp per row), RoPE and SwiGLU (elementwise) on CUDA, one kernel each way
//! (`kernels/fused.cu`). The gain of RMSNorm is frozen and gets no gradient; RoPE's backward is
//! its transposed rotation, the same kernel with `inverse` set; SwiGLU's backward writes both
//! input gradients into one `[2, …]` buffer, handed back as two views.

use super::{config, cuda_of, expect_dims, i32_of, kernel, per_dtype, view};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CpuStorage, CudaStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

fn cuda_only<T>(name: &str) -> Result<T> {
    candle_core::bail!("{name} runs on CUDA only")
}

// ------------------------------------------------------------------ RMSNorm

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, x: &CudaStorage, lx: &Layout, w: &CudaStorage, lw: &Layout) -> Result<(CudaStorage, Shape)> {
        let d = lw.shape().elem_count();
        if lx.dims().last() != Some(&d) {
            candle_core::bail!("fused RMSNorm: rows of {:?} against a gain of {d}", lx.dims());
        }
        let rows = lx.shape().elem_count() / d.max(1);
        let dev = x.device().clone();
        let func = kernel(&dev, "rmsnorm_fwd", x.dtype())?;
        let out = per_dtype!(x.dtype(), T => {
            let (xv, wv) = (view::<T>(x, lx, "x")?, view::<T>(w, lw, "the gain")?);
            let dst = unsafe { dev.alloc::<T>(lx.shape().elem_count())? };
            let di = i32_of(d, "the row length")?;
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&xv).arg(&wv).arg(&dst).arg(&rows).arg(&di).arg(&self.eps);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, lx.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = crate::ops::trace::traced("fused-rms-norm", g, || x.apply_op3_no_bwd(w, &g.contiguous()?, &RmsNormBwd { eps: self.eps }))?;
        Ok((Some(dx), None))
    }
}

struct RmsNormBwd {
    eps: f32,
}

impl CustomOp3 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "fused-rms-norm-bwd"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, x: &CudaStorage, lx: &Layout, w: &CudaStorage, lw: &Layout, g: &CudaStorage, lg: &Layout) -> Result<(CudaStorage, Shape)> {
        let d = lw.shape().elem_count();
        if lx.dims().last() != Some(&d) {
            candle_core::bail!("fused RMSNorm backward: rows of {:?} against a gain of {d}", lx.dims());
        }
        expect_dims(lg, lx.dims(), "the gradient")?;
        let rows = lx.shape().elem_count() / d.max(1);
        let dev = x.device().clone();
        let func = kernel(&dev, "rmsnorm_bwd", x.dtype())?;
        let out = per_dtype!(x.dtype(), T => {
            let (xv, wv, gv) = (view::<T>(x, lx, "x")?, view::<T>(w, lw, "the gain")?, view::<T>(g, lg, "the gradient")?);
            let dst = unsafe { dev.alloc::<T>(lx.shape().elem_count())? };
            let di = i32_of(d, "the row length")?;
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&xv).arg(&wv).arg(&gv).arg(&dst).arg(&rows).arg(&di).arg(&self.eps);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, lx.shape().clone()))
    }
}

/// [`RmsNormBwd`] plus the residual branch's gradient (`reft_rmsnorm_bwd_add`): inputs `x`,
/// the norm's output gradient and the residual gradient; the gain rides along.
struct RmsNormBwdAdd {
    w: Tensor,
    eps: f32,
}

impl CustomOp3 for RmsNormBwdAdd {
    fn name(&self) -> &'static str {
        "fused-rms-norm-bwd-add"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, x: &CudaStorage, lx: &Layout, g: &CudaStorage, lg: &Layout, res: &CudaStorage, lr: &Layout) -> Result<(CudaStorage, Shape)> {
        let (ws, lw) = self.w.storage_and_layout();
        let w = super::cuda_of(&ws, "the gain")?;
        let d = lw.shape().elem_count();
        if lx.dims().last() != Some(&d) {
            candle_core::bail!("fused RMSNorm backward: rows of {:?} against a gain of {d}", lx.dims());
        }
        expect_dims(lg, lx.dims(), "the gradient")?;
        expect_dims(lr, lx.dims(), "the residual gradient")?;
        let rows = lx.shape().elem_count() / d.max(1);
        let dev = x.device().clone();
        let func = kernel(&dev, "rmsnorm_bwd_add", x.dtype())?;
        let out = per_dtype!(x.dtype(), T => {
            let (xv, wv, gv, rv) = (view::<T>(x, lx, "x")?, view::<T>(w, &lw, "the gain")?, view::<T>(g, lg, "the gradient")?, view::<T>(res, lr, "the residual gradient")?);
            let dst = unsafe { dev.alloc::<T>(lx.shape().elem_count())? };
            let di = i32_of(d, "the row length")?;
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&xv).arg(&wv).arg(&gv).arg(&rv).arg(&dst).arg(&rows).arg(&di).arg(&self.eps);
            unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, lx.shape().clone()))
    }
}

/// [`rms_norm_backward`] plus `res`, no graph.
pub(crate) fn rms_norm_backward_add(xs: &Tensor, w: &Tensor, g: &Tensor, res: &Tensor, eps: f64) -> Result<Tensor> {
    let op = RmsNormBwdAdd { w: w.contiguous()?, eps: eps as f32 };
    xs.contiguous()?.apply_op3_no_bwd(&g.contiguous()?, &res.contiguous()?, &op)
}

/// RMSNorm of the last dimension of `xs` with the frozen gain `w` (same dtype, `[hidden]`).
pub(crate) fn rms_norm(xs: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    xs.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}

/// The input gradient of [`rms_norm`] for the output gradient `g`, no graph.
pub(crate) fn rms_norm_backward(xs: &Tensor, w: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    xs.contiguous()?.apply_op3_no_bwd(&w.contiguous()?, &g.contiguous()?, &RmsNormBwd { eps: eps as f32 })
}

// ------------------------------------------------------------------ RoPE

struct Rope {
    cos: Tensor,
    sin: Tensor,
    inverse: bool,
    /// Bit 1: the input is in the projections' row layout `[b, t, heads, hd]`; bit 2: the
    /// output is. Otherwise `[b, heads, t, hd]`. Only 0 has a backward (the graph's use).
    layout: i32,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, x: &CudaStorage, lx: &Layout) -> Result<(CudaStorage, Shape)> {
        let (b, heads, t, hd) = match lx.shape().dims4()? {
            (b, t, h, hd) if self.layout & 1 != 0 => (b, h, t, hd),
            (b, h, t, hd) => (b, h, t, hd),
        };
        let n = lx.shape().elem_count();
        let dev = x.device().clone();
        let (cs, cl) = self.cos.storage_and_layout();
        let (ss, sl) = self.sin.storage_and_layout();
        // The kernel reads the tables as [b, 1, t, hd].
        let table = [b, 1, t, hd];
        expect_dims(cl, &table, "the cos table")?;
        expect_dims(sl, &table, "the sin table")?;
        let func = kernel(&dev, "rope", x.dtype())?;
        let out = per_dtype!(x.dtype(), T => {
            let xv = view::<T>(x, lx, "x")?;
            let cv = view::<T>(cuda_of(&cs, "the cos table")?, cl, "the cos table")?;
            let sv = view::<T>(cuda_of(&ss, "the sin table")?, sl, "the sin table")?;
            let dst = unsafe { dev.alloc::<T>(n)? };
            let (hi, ti, di, inv) = (i32_of(heads, "heads")?, i32_of(t, "t")?, i32_of(hd, "head_dim")?, self.inverse as i32);
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&xv).arg(&cv).arg(&sv).arg(&dst).arg(&n).arg(&hi).arg(&ti).arg(&di).arg(&inv).arg(&self.layout);
            unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        let shape = if self.layout & 2 != 0 { Shape::from((b, t, heads, hd)) } else { Shape::from((b, heads, t, hd)) };
        Ok((out, shape))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        if self.layout != 0 {
            candle_core::bail!("fused-rope: no backward across layouts");
        }
        let back = Rope { cos: self.cos.clone(), sin: self.sin.clone(), inverse: !self.inverse, layout: 0 };
        crate::ops::trace::traced("fused-rope", g, || Ok(Some(g.contiguous()?.apply_op1_no_bwd(&back)?)))
    }
}

/// The rotation of `x` `[b, heads, t, hd]` by tables `cos`, `sin` `[b, 1, t, hd]` of its dtype.
pub(crate) fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Rope { cos: cos.contiguous()?, sin: sin.contiguous()?, inverse: false, layout: 0 })
}

/// The input gradient of [`apply_rope`] for the output gradient `g`: the inverse rotation.
pub(crate) fn rope_backward(g: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    g.contiguous()?.apply_op1_no_bwd(&Rope { cos: cos.contiguous()?, sin: sin.contiguous()?, inverse: true, layout: 0 })
}

/// [`apply_rope`] of projection rows `x` `[b, t, heads, hd]`, giving `[b, heads, t, hd]`: the
/// heads' transpose done by the rotation's own pass. No graph.
pub(crate) fn rope_from_rows(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    x.detach().contiguous()?.apply_op1_no_bwd(&Rope { cos: cos.contiguous()?, sin: sin.contiguous()?, inverse: false, layout: 1 })
}

/// [`rope_backward`] written as rows `[b, t, heads, hd]` for the projections' backward.
pub(crate) fn rope_backward_to_rows(g: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    g.detach().contiguous()?.apply_op1_no_bwd(&Rope { cos: cos.contiguous()?, sin: sin.contiguous()?, inverse: true, layout: 2 })
}

// ------------------------------------------------------------------ SwiGLU

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, a: &CudaStorage, la: &Layout, u: &CudaStorage, lu: &Layout) -> Result<(CudaStorage, Shape)> {
        expect_dims(lu, la.dims(), "up")?;
        let n = la.shape().elem_count();
        let dev = a.device().clone();
        let func = kernel(&dev, "swiglu_fwd", a.dtype())?;
        let out = per_dtype!(a.dtype(), T => {
            let (av, uv) = (view::<T>(a, la, "the gate")?, view::<T>(u, lu, "up")?);
            let dst = unsafe { dev.alloc::<T>(n)? };
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            let flat = 0usize; // separate gate and up arrays (`packed.rs` passes the packed width)
            lb.arg(&av).arg(&uv).arg(&dst).arg(&n).arg(&flat);
            unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        Ok((out, la.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, u: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let both = crate::ops::trace::traced("fused-swiglu", g, || a.apply_op3_no_bwd(u, &g.contiguous()?, &SwiGluBwd))?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

struct SwiGluBwd;

impl CustomOp3 for SwiGluBwd {
    fn name(&self) -> &'static str {
        "fused-swiglu-bwd"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, a: &CudaStorage, la: &Layout, u: &CudaStorage, lu: &Layout, g: &CudaStorage, lg: &Layout) -> Result<(CudaStorage, Shape)> {
        expect_dims(lu, la.dims(), "up")?;
        expect_dims(lg, la.dims(), "the gradient")?;
        let n = la.shape().elem_count();
        let dev = a.device().clone();
        let func = kernel(&dev, "swiglu_bwd", a.dtype())?;
        let out = per_dtype!(a.dtype(), T => {
            let (av, uv, gv) = (view::<T>(a, la, "the gate")?, view::<T>(u, lu, "up")?, view::<T>(g, lg, "the gradient")?);
            let dst = unsafe { dev.alloc::<T>(2 * n)? };
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            let flat = 0usize;
            lb.arg(&av).arg(&uv).arg(&gv).arg(&dst).arg(&n).arg(&flat);
            unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        let mut dims = vec![2];
        dims.extend_from_slice(la.dims());
        Ok((out, Shape::from(dims)))
    }
}

/// `silu(gate) ⊙ up` for two tensors of one shape and dtype.
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

/// The gradients of [`swiglu`]'s gate and up inputs for the output gradient `g`, no graph.
pub(crate) fn swiglu_backward(gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let both = gate.contiguous()?.apply_op3_no_bwd(&up.contiguous()?, &g.contiguous()?, &SwiGluBwd)?;
    Ok((both.get(0)?, both.get(1)?))
}
