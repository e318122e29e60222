//! The packed projections' kernels on CUDA (`ops/packed.rs`): the q/k/v rows of one GEMM split
//! into rotated heads and back (`reft_qkv_rows_*`), and SwiGLU over the packed gate/up rows
//! (`reft_swiglu_{fwd,bwd}_*` with the packed width). No graph: the block nodes and the
//! inference forward call them on detached tensors.

use super::{config, cuda_of, expect_dims, i32_of, kernel, per_dtype, view};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CpuStorage, CudaStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

fn cuda_only<T>(name: &str) -> Result<T> {
    candle_core::bail!("{name} runs on CUDA only")
}

/// `[nh, nkv, hd]` and the rotary tables `[b, 1, t, hd]`.
struct Qkv {
    heads: [usize; 3],
    cos: Tensor,
    sin: Tensor,
}

impl Qkv {
    fn sizes(&self, b: usize, t: usize) -> (usize, usize, usize) {
        let [nh, nkv, hd] = self.heads;
        (b * nh * t * hd, b * nkv * t * hd, b * t * (nh + 2 * nkv) * hd)
    }

    /// Launches `reft_qkv_rows` with `rows` and the three sections of `heads_buf` (q, k, v in
    /// that order, each contiguous) as they are given; keys and values `kcap` positions per head
    /// from position `koff` on (`(t, 0)` but for a reserved cache).
    #[allow(clippy::too_many_arguments)]
    fn launch(&self, dev: &candle_core::CudaDevice, dtype: candle_core::DType, b: usize, t: usize, rows: &CudaStorage, heads_buf: [&CudaStorage; 3], offsets: [usize; 3], inverse: bool, (kcap, koff): (usize, usize)) -> Result<()> {
        let [nh, nkv, hd] = self.heads;
        let (nq, _, n) = self.sizes(b, t);
        let nk = b * nkv * kcap * hd;
        let table = [b, 1, t, hd];
        let (cs, cl) = self.cos.storage_and_layout();
        let (ss, sl) = self.sin.storage_and_layout();
        expect_dims(cl, &table, "the cos table")?;
        expect_dims(sl, &table, "the sin table")?;
        let func = kernel(dev, "qkv_rows", dtype)?;
        per_dtype!(dtype, T => {
            let cv = view::<T>(cuda_of(&cs, "the cos table")?, cl, "the cos table")?;
            let sv = view::<T>(cuda_of(&ss, "the sin table")?, sl, "the sin table")?;
            let rv = rows.as_cuda_slice::<T>()?.slice(0..n);
            let sec = |i: usize, len: usize| -> Result<_> { Ok(heads_buf[i].as_cuda_slice::<T>()?.slice(offsets[i]..offsets[i] + len)) };
            let (qv, kv, vv) = (sec(0, nq)?, sec(1, nk)?, sec(2, nk)?);
            let (ti, hi, kvi, di, inv) = (i32_of(t, "t")?, i32_of(nh, "heads")?, i32_of(nkv, "kv heads")?, i32_of(hd, "head_dim")?, inverse as i32);
            let (ci, oi) = (i32_of(kcap, "the cache capacity")?, i32_of(koff, "the cache position")?);
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            lb.arg(&rv).arg(&qv).arg(&kv).arg(&vv).arg(&cv).arg(&sv).arg(&n).arg(&ti).arg(&hi).arg(&kvi).arg(&di).arg(&inv).arg(&ci).arg(&oi);
            unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
        });
        Ok(())
    }
}

impl CustomOp1 for Qkv {
    fn name(&self) -> &'static str {
        "fused-qkv-heads"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    /// `rows` `[b, t, W]` → one flat buffer `[q | k | v]` in heads layout.
    fn cuda_fwd(&self, rows: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let (b, t, w) = l.shape().dims3()?;
        let [nh, nkv, hd] = self.heads;
        if w != (nh + 2 * nkv) * hd || l.start_offset() != 0 || !l.is_contiguous() {
            candle_core::bail!("fused qkv: rows {:?} (offset {}) do not hold {nh} + 2·{nkv} heads of {hd}", l.dims(), l.start_offset());
        }
        let (nq, nk, n) = self.sizes(b, t);
        let dev = rows.device().clone();
        let out = per_dtype!(rows.dtype(), T => {
            let dst = unsafe { dev.alloc::<T>(n)? };
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        self.launch(&dev, rows.dtype(), b, t, rows, [&out, &out, &out], [0, nq, nq + nk], false, (t, 0))?;
        Ok((out, Shape::from(n)))
    }
}

struct QkvGrad(Qkv);

impl CustomOp3 for QkvGrad {
    fn name(&self) -> &'static str {
        "fused-qkv-rows-grad"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, dq: &CudaStorage, lq: &Layout, dk: &CudaStorage, lk: &Layout, dv: &CudaStorage, lv: &Layout) -> Result<(CudaStorage, Shape)> {
        let (b, nh, t, hd) = lq.shape().dims4()?;
        let [_, nkv, _] = self.0.heads;
        if self.0.heads != [nh, nkv, hd] {
            candle_core::bail!("fused qkv gradient: queries {:?} against heads {:?}", lq.dims(), self.0.heads);
        }
        expect_dims(lk, &[b, nkv, t, hd], "the keys' gradient")?;
        expect_dims(lv, &[b, nkv, t, hd], "the values' gradient")?;
        for (l, what) in [(lq, "dq"), (lk, "dk"), (lv, "dv")] {
            if !l.is_contiguous() {
                candle_core::bail!("fused qkv gradient: {what} is not contiguous");
            }
        }
        let (_, _, n) = self.0.sizes(b, t);
        let dev = dq.device().clone();
        let rows = per_dtype!(dq.dtype(), T => {
            let dst = unsafe { dev.alloc::<T>(n)? };
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        self.0.launch(&dev, dq.dtype(), b, t, &rows, [dq, dk, dv], [lq.start_offset(), lk.start_offset(), lv.start_offset()], true, (t, 0))?;
        Ok((rows, Shape::from((b, t, (nh + 2 * nkv) * hd))))
    }
}

/// Rotated queries `[b, nh, t, hd]`, rotated keys and values `[b, nkv, t, hd]` from the packed
/// rows `[b, t, (nh + 2·nkv)·hd]`, in one kernel; three contiguous views of one buffer.
pub(crate) fn qkv_heads(rows: &Tensor, cos: &Tensor, sin: &Tensor, heads: [usize; 3]) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, t, _) = rows.dims3()?;
    let [nh, nkv, hd] = heads;
    let op = Qkv { heads, cos: cos.contiguous()?, sin: sin.contiguous()? };
    let (nq, nk, _) = op.sizes(b, t);
    let flat = rows.detach().contiguous()?.apply_op1_no_bwd(&op)?;
    let q = flat.narrow(0, 0, nq)?.reshape((b, nh, t, hd))?;
    let k = flat.narrow(0, nq, nk)?.reshape((b, nkv, t, hd))?;
    let v = flat.narrow(0, nq + nk, nk)?.reshape((b, nkv, t, hd))?;
    Ok((q, k, v))
}

/// [`Qkv`] writing the keys and values into a reserved cache (`[b, nkv, kcap, hd]` buffers,
/// contiguous, from position `koff` on) and returning only the queries.
struct QkvIntoCache {
    qkv: Qkv,
    k: Tensor,
    v: Tensor,
    koff: usize,
}

impl CustomOp1 for QkvIntoCache {
    fn name(&self) -> &'static str {
        "fused-qkv-into-cache"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, rows: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let (b, t, w) = l.shape().dims3()?;
        let [nh, nkv, hd] = self.qkv.heads;
        if w != (nh + 2 * nkv) * hd || l.start_offset() != 0 || !l.is_contiguous() {
            candle_core::bail!("fused qkv into cache: rows {:?} do not hold {nh} + 2·{nkv} heads of {hd}", l.dims());
        }
        let (ks, kl) = self.k.storage_and_layout();
        let (vs, vl) = self.v.storage_and_layout();
        let kcap = kl.dims().get(2).copied().unwrap_or(0);
        for (lay, what) in [(&*kl, "the key cache"), (&*vl, "the value cache")] {
            expect_dims(lay, &[b, nkv, kcap, hd], what)?;
            if !lay.is_contiguous() || lay.start_offset() != 0 {
                candle_core::bail!("fused qkv into cache: {what} is not a whole buffer");
            }
        }
        if self.koff + t > kcap {
            candle_core::bail!("fused qkv into cache: positions {}..{} past a capacity of {kcap}", self.koff, self.koff + t);
        }
        let dev = rows.device().clone();
        let q = per_dtype!(rows.dtype(), T => {
            let dst = unsafe { dev.alloc::<T>(b * nh * t * hd)? };
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        let (kc, vc) = (cuda_of(&ks, "the key cache")?, cuda_of(&vs, "the value cache")?);
        self.qkv.launch(&dev, rows.dtype(), b, t, rows, [&q, kc, vc], [0, 0, 0], false, (kcap, self.koff))?;
        Ok((q, Shape::from((b, nh, t, hd))))
    }
}

/// The rotated queries `[b, nh, t, hd]` of packed rows, with the rotated keys and the values
/// written into the reserved cache buffers `kc`, `vc` `[b, nkv, kcap, hd]` at positions
/// `past..past + t`, in one kernel. The buffers are written in place (the cache's own).
pub(crate) fn qkv_heads_into_cache(rows: &Tensor, cos: &Tensor, sin: &Tensor, heads: [usize; 3], kc: &Tensor, vc: &Tensor, past: usize) -> Result<Tensor> {
    let op = QkvIntoCache { qkv: Qkv { heads, cos: cos.contiguous()?, sin: sin.contiguous()? }, k: kc.clone(), v: vc.clone(), koff: past };
    rows.detach().contiguous()?.apply_op1_no_bwd(&op)
}

/// The packed rows' gradient `[b, t, (nh + 2·nkv)·hd]` from those of the rotated queries, keys
/// and values (heads layout): the rotations' transposes and the values' transpose, one kernel.
pub(crate) fn qkv_rows_grad(dq: &Tensor, dk: &Tensor, dv: &Tensor, cos: &Tensor, sin: &Tensor, heads: [usize; 3]) -> Result<Tensor> {
    let op = QkvGrad(Qkv { heads, cos: cos.contiguous()?, sin: sin.contiguous()? });
    dq.detach().contiguous()?.apply_op3_no_bwd(&dk.detach().contiguous()?, &dv.detach().contiguous()?, &op)
}

/// SwiGLU over packed gate/up rows `[.., 2f]`, forward (`grad` = None: `[.., f]`) or backward
/// (the packed input gradient `[.., 2f]` for the output gradient).
struct SwiGluPacked {
    f: usize,
}

impl SwiGluPacked {
    fn run(&self, au: &CudaStorage, la: &Layout, grad: Option<(&CudaStorage, &Layout)>) -> Result<(CudaStorage, Shape)> {
        let f = self.f;
        let dims = la.dims();
        if f == 0 || dims.last() != Some(&(2 * f)) {
            candle_core::bail!("fused packed swiglu: rows {dims:?} are not gate and up of {f}");
        }
        let n = la.shape().elem_count() / 2;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("checked") = f;
        if let Some((_, lg)) = grad {
            expect_dims(lg, &out_dims, "the gradient")?;
        }
        let dev = au.device().clone();
        let func = kernel(&dev, if grad.is_some() { "swiglu_bwd" } else { "swiglu_fwd" }, au.dtype())?;
        let out = per_dtype!(au.dtype(), T => {
            let av = view::<T>(au, la, "the packed gate and up")?;
            let gv = match grad {
                Some((g, lg)) => Some(view::<T>(g, lg, "the gradient")?),
                None => None,
            };
            let dst = unsafe { dev.alloc::<T>(if grad.is_some() { 2 * n } else { n })? };
            let stream = dev.cuda_stream();
            let mut lb = stream.launch_builder(&func);
            // Both the gate and up arguments are the packed rows; the kernel offsets up by `f`.
            lb.arg(&av).arg(&av);
            if let Some(gv) = &gv {
                lb.arg(gv);
            }
            lb.arg(&dst).arg(&n).arg(&f);
            unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
            CudaStorage::wrap_cuda_slice(dst, dev.clone())
        });
        let shape = if grad.is_some() { la.shape().clone() } else { Shape::from(out_dims) };
        Ok((out, shape))
    }
}

impl CustomOp1 for SwiGluPacked {
    fn name(&self) -> &'static str {
        "fused-swiglu-packed"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only("fused-swiglu-packed")
    }

    fn cuda_fwd(&self, au: &CudaStorage, la: &Layout) -> Result<(CudaStorage, Shape)> {
        self.run(au, la, None)
    }
}

impl CustomOp2 for SwiGluPacked {
    fn name(&self) -> &'static str {
        "fused-swiglu-packed-bwd"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only("fused-swiglu-packed-bwd")
    }

    fn cuda_fwd(&self, au: &CudaStorage, la: &Layout, g: &CudaStorage, lg: &Layout) -> Result<(CudaStorage, Shape)> {
        self.run(au, la, Some((g, lg)))
    }
}

/// `silu(gate) ⊙ up` of packed rows `au` `[.., 2f]`; no graph.
pub(crate) fn swiglu_packed(au: &Tensor, f: usize) -> Result<Tensor> {
    au.detach().contiguous()?.apply_op1_no_bwd(&SwiGluPacked { f })
}

/// The packed input gradient `[.., 2f]` (`d_gate | d_up`) of [`swiglu_packed`] for `g` `[.., f]`.
pub(crate) fn swiglu_packed_vjp(au: &Tensor, g: &Tensor, f: usize) -> Result<Tensor> {
    au.detach().contiguous()?.apply_op2_no_bwd(&g.detach().contiguous()?, &SwiGluPacked { f })
}
