//! The static decoding step on CUDA: [`StepKernels`] as launches of `reft-kernels`' kernels
//! and `cublasGemmEx` calls on device pointers resolved once.
//!
//! Every buffer is allocated when the generation's first decoding step is built, and every
//! weight's and cache's device pointer is read then (the decoder and the cache stay alive in
//! the tensors this holds), so a step's host work is one upload, 8 launches per layer and one
//! download: no tensor, no allocation, no layout check. The GEMMs go through candle's cuBLAS
//! handle (its stream) with f32 accumulation, as candle's own matmul; f32 models compute in
//! true f32 (`CUBLAS_COMPUTE_32F`, no TF32).
//!
//! With `REFT_DECODE_GRAPH=1` the launches are captured once and replayed as a CUDA graph
//! (`graph.rs`); the cache position and key count then come from device memory. The step then
//! runs on a stream of its own, forked from the device's shared one after the prefill and the
//! step's allocations: a capture takes in whatever is queued on its stream from any thread, and
//! another thread's work queued on the shared stream meanwhile (a training step of another
//! model, from Node's worker pool) would become part of the graph instead of running. Every
//! step ends in a synchronisation of that stream (the download of its picks or logits), and
//! dropping the step synchronises it too, so the shared stream's frees of its buffers and of the
//! cache never overtake its work (event tracking is off: `cuda_device.rs`).
//!
//! This file runs only on a GPU: `tests/decode_step.rs` proves the sequence and kernels through
//! their emulation, and `examples/cuda_smoke.rs` compares the tokens with the CPU's.

use super::graph::Graphed;
use super::{applies, run_step, Buf, Gain, Mat, StaticDecoder, StepDims, StepInputs, StepKernels};
use crate::models::{Decoder, KvCache};
use crate::ops::cuda_fused::{config, kernel};
use candle_core::cuda_backend::cudarc::cublas::{result::gemm_ex, sys as blas, CudaBlas};
use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, PushKernelArg, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaDevice, DType, Result, Storage, Tensor, WithDType};
use std::sync::Arc;

/// The device pointer of a contiguous CUDA tensor of `T` with `len` elements (checked).
fn pointer<T: CudaDType + DeviceRepr>(t: &Tensor, stream: &Arc<CudaStream>, len: usize, what: &str) -> Result<u64> {
    let (s, l) = t.storage_and_layout();
    let Storage::Cuda(c) = &*s else {
        candle_core::bail!("static decoding step: {what} is not on the CUDA device");
    };
    match l.contiguous_offsets() {
        Some((a, b)) if b - a == len => Ok(c.as_cuda_slice::<T>()?.slice(a..b).device_ptr(stream).0),
        _ => candle_core::bail!("static decoding step: {what} {:?} is not {len} contiguous values", l.dims()),
    }
}

/// A weight matrix `[n, k]` by its pointer.
#[derive(Clone, Copy)]
struct Matrix {
    ptr: u64,
    n: usize,
    k: usize,
}

struct Layer {
    qkv: Matrix,
    o: Matrix,
    gate_up: Matrix,
    down: Matrix,
    input_norm: u64,
    post_norm: u64,
    keys: u64,
    values: u64,
}

struct Funcs {
    embed: CudaFunction,
    rms: CudaFunction,
    add_rms: CudaFunction,
    qkv: CudaFunction,
    attn: CudaFunction,
    swiglu: CudaFunction,
    argmax: CudaFunction,
    qkv_at: CudaFunction,
    attn_at: CudaFunction,
}

struct CudaStep<T: WithDType> {
    stream: Arc<CudaStream>,
    blas: Arc<CudaBlas>,
    dims: StepDims,
    /// Indexed as [`Buf::ALL`]; the pointers of `_bufs`.
    bufs: Vec<u64>,
    _bufs: Vec<CudaSlice<T>>,
    ids: CudaSlice<u32>,
    picks: CudaSlice<u32>,
    mask: CudaSlice<f32>,
    cos: CudaSlice<T>,
    sin: CudaSlice<T>,
    /// Keys the uploaded mask covers (each row's stride in `mask` without a graph).
    keys: usize,
    /// Device pointers of `ids`, `picks`, `mask`, `cos` and `sin`.
    io: [u64; 5],
    /// With a CUDA graph: the pointer of `[cache position, keys]`, which the `_at` kernels read.
    info: Option<u64>,
    graphed: Option<Graphed>,
    layers: Vec<Layer>,
    embed: u64,
    norm: u64,
    lm_head: Matrix,
    f: Funcs,
    /// Keeps the weights and the cache buffers (whose pointers `layers` holds) alive.
    _keep: Vec<Tensor>,
}

/// The static step for `dec` after the prefill that filled `cache`, or `None` where it does
/// not apply (`super::applies`, or a dtype without kernels).
pub(super) fn build(dec: &Decoder, cache: &KvCache, batch: usize) -> Result<Option<StaticDecoder>> {
    let past = cache.past_len();
    if !applies(dec, cache, past) {
        return Ok(None);
    }
    let dims = StepDims::of(dec, batch, cache.capacity);
    let kernels: Box<dyn StepKernels> = match dec.dtype {
        DType::F32 => Box::new(CudaStep::<f32>::new(dec, cache, dims)?),
        DType::BF16 => Box::new(CudaStep::<half::bf16>::new(dec, cache, dims)?),
        DType::F16 => Box::new(CudaStep::<half::f16>::new(dec, cache, dims)?),
        _ => return Ok(None),
    };
    Ok(Some(StaticDecoder::new(kernels, dims, past)))
}

impl<T: WithDType + CudaDType + DeviceRepr + ValidAsZeroBits> CudaStep<T> {
    fn new(dec: &Decoder, cache: &KvCache, d: StepDims) -> Result<Self> {
        let dev: &CudaDevice = dec.device.as_cuda_device()?;
        let stream = dev.cuda_stream();
        let mut keep = Vec::new();
        let mut mat = |t: &Tensor, n: usize, k: usize, what: &str| -> Result<Matrix> {
            keep.push(t.clone());
            Ok(Matrix { ptr: pointer::<T>(t, &stream, n * k, what)?, n, k })
        };
        let (h, f, hq) = (d.hidden, d.intermediate, d.heads * d.head_dim);
        let mut layers = Vec::with_capacity(d.layers);
        for (l, w) in dec.layers.iter().enumerate() {
            let p = w.packed.as_ref().expect("applies() checked the packing");
            let (qkv, o) = (mat(&p.qkv.weight, d.qkv_width(), h, "the q/k/v weight")?, mat(&w.o.weight, h, hq, "the output weight")?);
            let (gate_up, down) = (mat(&p.gate_up.weight, 2 * f, h, "the gate/up weight")?, mat(&w.down.weight, h, f, "the down weight")?);
            let (input_norm, post_norm) = (mat(&w.input_norm, 1, h, "a norm gain")?.ptr, mat(&w.post_norm, 1, h, "a norm gain")?.ptr);
            let (kc, vc) = cache.reserved(l).expect("applies() checked the cache");
            let len = d.batch * d.kv_heads * d.capacity * d.head_dim;
            let (keys, values) = (mat(kc, 1, len, "the key cache")?.ptr, mat(vc, 1, len, "the value cache")?.ptr);
            layers.push(Layer { qkv, o, gate_up, down, input_norm, post_norm, keys, values });
        }
        let embed = mat(&dec.embed, d.vocab, h, "the embedding")?.ptr;
        let norm = mat(&dec.norm, 1, h, "the final norm")?.ptr;
        let lm_head = mat(&dec.lm_head, d.vocab, h, "the LM head")?;
        let bufs: Vec<CudaSlice<T>> = Buf::ALL.iter().map(|b| dev.alloc_zeros::<T>(d.batch * b.width(&d))).collect::<Result<_>>()?;
        let ptrs = bufs.iter().map(|b| b.device_ptr(&stream).0).collect();
        let func = |name: &str| kernel(dev, name, T::DTYPE);
        let f = Funcs {
            embed: func("embed_rows")?,
            rms: func("rmsnorm_fwd")?,
            add_rms: func("add_rmsnorm_fwd")?,
            qkv: func("qkv_rows")?,
            attn: func("decode_attn")?,
            swiglu: func("swiglu_fwd")?,
            argmax: func("argmax_rows")?,
            qkv_at: func("qkv_rows_at")?,
            attn_at: func("decode_attn_at")?,
        };
        let (ids, picks, mask) = (dev.alloc_zeros::<u32>(d.batch)?, dev.alloc_zeros::<u32>(d.batch)?, dev.alloc_zeros::<f32>(d.batch * d.capacity)?);
        let (cos, sin) = (dev.alloc_zeros::<T>(d.batch * d.head_dim)?, dev.alloc_zeros::<T>(d.batch * d.head_dim)?);
        let io = [ids.device_ptr(&stream).0, picks.device_ptr(&stream).0, mask.device_ptr(&stream).0, cos.device_ptr(&stream).0, sin.device_ptr(&stream).0];
        let (stream, blas, info, graphed) = if crate::ops::decode_graph_on() {
            let own = stream.fork().w()?;
            let (g, info, blas) = Graphed::new(dev, &own)?;
            // After the graph's allocations too, which queue their zero-fills on the shared stream.
            own.join(&stream).w()?;
            (own, blas, Some(info), Some(g))
        } else {
            (stream.clone(), dev.cublas_handle(), None, None)
        };
        Ok(Self {
            blas,
            io,
            info,
            graphed,
            dims: d,
            bufs: ptrs,
            _bufs: bufs,
            ids,
            picks,
            mask,
            cos,
            sin,
            keys: 0,
            layers,
            embed,
            norm,
            lm_head,
            f,
            _keep: keep,
            stream,
        })
    }

    fn buf(&self, b: Buf) -> u64 {
        self.bufs[Buf::ALL.iter().position(|x| *x == b).expect("every Buf is in ALL")]
    }

    fn gain(&self, g: Gain) -> u64 {
        match g {
            Gain::Input(l) => self.layers[l].input_norm,
            Gain::Post(l) => self.layers[l].post_norm,
            Gain::Final => self.norm,
        }
    }

    fn matrix(&self, m: Mat) -> Matrix {
        match m {
            Mat::Qkv(l) => self.layers[l].qkv,
            Mat::O(l) => self.layers[l].o,
            Mat::GateUp(l) => self.layers[l].gate_up,
            Mat::Down(l) => self.layers[l].down,
            Mat::LmHead => self.lm_head,
        }
    }

    fn data_type() -> blas::cudaDataType {
        match T::DTYPE {
            DType::BF16 => blas::cudaDataType_t::CUDA_R_16BF,
            DType::F16 => blas::cudaDataType_t::CUDA_R_16F,
            _ => blas::cudaDataType_t::CUDA_R_32F,
        }
    }
}

impl<T: WithDType> Drop for CudaStep<T> {
    fn drop(&mut self) {
        // The buffers go back to the shared stream's pool when the fields drop; with a stream of
        // the step's own (a graph), its last work must be done first. Without one this is the
        // shared stream, whose order already covers it, and the wait is short.
        if self.graphed.is_some() {
            let _ = self.stream.synchronize();
        }
    }
}

fn i32_of(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("static decoding step: {v} exceeds i32")))
}

impl<T: WithDType + CudaDType + DeviceRepr + ValidAsZeroBits> StepKernels for CudaStep<T> {
    fn upload(&mut self, s: &StepInputs) -> Result<()> {
        let (b, hd) = (self.dims.batch, self.dims.head_dim);
        if s.ids.len() != b || s.mask.len() != b * s.keys || s.keys > self.dims.capacity || s.cos.len() != b * hd || s.sin.len() != b * hd {
            candle_core::bail!("static decoding step: inputs do not match a batch of {b} with {} cache positions", self.dims.capacity);
        }
        let cast = |v: &[f32]| v.iter().map(|&x| T::from_f64(x as f64)).collect::<Vec<T>>();
        self.stream.memcpy_htod(&s.ids, &mut self.ids).w()?;
        match self.graphed.as_mut() {
            Some(g) => {
                self.stream.memcpy_htod(&s.mask_strided(self.dims.capacity), &mut self.mask).w()?;
                self.stream.memcpy_htod(&[i32_of(s.keys - 1)?, i32_of(s.keys)?], &mut g.info).w()?;
            }
            None => self.stream.memcpy_htod(&s.mask, &mut self.mask).w()?,
        }
        self.stream.memcpy_htod(&cast(&s.cos), &mut self.cos).w()?;
        self.stream.memcpy_htod(&cast(&s.sin), &mut self.sin).w()?;
        self.keys = s.keys;
        Ok(())
    }

    fn embed(&mut self, y: Buf) -> Result<()> {
        let (n, d) = (self.dims.batch * self.dims.hidden, i32_of(self.dims.hidden)?);
        let (ids, out) = (self.io[0], self.buf(y));
        let mut lb = self.stream.launch_builder(&self.f.embed);
        lb.arg(&self.embed).arg(&ids).arg(&out).arg(&n).arg(&d);
        unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
        Ok(())
    }

    fn rms_norm(&mut self, x: Buf, w: Gain, y: Buf) -> Result<()> {
        let (rows, d, eps) = (self.dims.batch, i32_of(self.dims.hidden)?, self.dims.eps);
        let (xp, wp, yp) = (self.buf(x), self.gain(w), self.buf(y));
        let mut lb = self.stream.launch_builder(&self.f.rms);
        lb.arg(&xp).arg(&wp).arg(&yp).arg(&rows).arg(&d).arg(&eps);
        unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
        Ok(())
    }

    fn add_rms_norm(&mut self, x: Buf, r: Buf, w: Gain, s: Buf, y: Buf) -> Result<()> {
        let (rows, d, eps) = (self.dims.batch, i32_of(self.dims.hidden)?, self.dims.eps);
        let (xp, rp, wp, sp, yp) = (self.buf(x), self.buf(r), self.gain(w), self.buf(s), self.buf(y));
        let mut lb = self.stream.launch_builder(&self.f.add_rms);
        lb.arg(&xp).arg(&rp).arg(&wp).arg(&sp).arg(&yp).arg(&rows).arg(&d).arg(&eps);
        unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
        Ok(())
    }

    fn linear(&mut self, x: Buf, w: Mat, y: Buf) -> Result<()> {
        // Row-major y[m, n] = x[m, k]·Wᵀ is column-major yᵀ = op(W)·xᵀ with W read transposed.
        let Matrix { ptr, n, k } = self.matrix(w);
        let (m, ty) = (self.dims.batch, Self::data_type());
        let (alpha, beta) = (1f32, 0f32);
        let (xp, yp) = (self.buf(x), self.buf(y));
        let (ni, ki, mi) = (i32_of(n)?, i32_of(k)?, i32_of(m)?);
        unsafe {
            gemm_ex(
                *self.blas.handle(),
                blas::cublasOperation_t::CUBLAS_OP_T,
                blas::cublasOperation_t::CUBLAS_OP_N,
                ni,
                mi,
                ki,
                &alpha as *const f32 as *const _,
                ptr as *const _,
                ty,
                ki,
                xp as *const _,
                ty,
                ki,
                &beta as *const f32 as *const _,
                yp as *mut _,
                ty,
                ni,
                blas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| candle_core::Error::Msg(format!("static decoding step: cuBLAS GEMM {m}×{k}·{k}×{n}: {e:?}")))
    }

    fn qkv_into_cache(&mut self, rows: Buf, q: Buf, layer: usize, at: usize) -> Result<()> {
        let d = &self.dims;
        let n = d.batch * d.qkv_width();
        let (t, nh, nkv, hd, inv, kcap, koff) = (1i32, i32_of(d.heads)?, i32_of(d.kv_heads)?, i32_of(d.head_dim)?, 0i32, i32_of(d.capacity)?, i32_of(at)?);
        let (rp, qp, lw) = (self.buf(rows), self.buf(q), &self.layers[layer]);
        let (cp, sp) = (self.io[3], self.io[4]);
        let mut lb = self.stream.launch_builder(if self.info.is_some() { &self.f.qkv_at } else { &self.f.qkv });
        lb.arg(&rp).arg(&qp).arg(&lw.keys).arg(&lw.values).arg(&cp).arg(&sp).arg(&n);
        match &self.info {
            Some(info) => lb.arg(&nh).arg(&nkv).arg(&hd).arg(&kcap).arg(info),
            None => lb.arg(&t).arg(&nh).arg(&nkv).arg(&hd).arg(&inv).arg(&kcap).arg(&koff),
        };
        unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
        Ok(())
    }

    fn attention(&mut self, q: Buf, layer: usize, keys: usize, y: Buf) -> Result<()> {
        if keys != self.keys {
            candle_core::bail!("static decoding step: attention over {keys} keys with a mask of {}", self.keys);
        }
        let d = &self.dims;
        let rows = d.batch * d.heads;
        let scale = 1.0 / (d.head_dim as f32).sqrt();
        let (g, nkv, tk, kcap, hd) = (i32_of(d.heads / d.kv_heads)?, i32_of(d.kv_heads)?, i32_of(keys)?, i32_of(d.capacity)?, i32_of(d.head_dim)?);
        let (qp, yp, lw, mp) = (self.buf(q), self.buf(y), &self.layers[layer], self.io[2]);
        let mut lb = self.stream.launch_builder(if self.info.is_some() { &self.f.attn_at } else { &self.f.attn });
        lb.arg(&qp).arg(&lw.keys).arg(&lw.values).arg(&mp).arg(&yp).arg(&rows).arg(&g).arg(&nkv);
        match &self.info {
            Some(info) => lb.arg(&kcap).arg(&hd).arg(&scale).arg(info),
            None => lb.arg(&tk).arg(&kcap).arg(&hd).arg(&scale),
        };
        unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
        Ok(())
    }

    fn swiglu(&mut self, x: Buf, y: Buf) -> Result<()> {
        let (n, f) = (self.dims.batch * self.dims.intermediate, self.dims.intermediate);
        let (xp, yp) = (self.buf(x), self.buf(y));
        let mut lb = self.stream.launch_builder(&self.f.swiglu);
        lb.arg(&xp).arg(&xp).arg(&yp).arg(&n).arg(&f);
        unsafe { lb.launch(config(reft_kernels::elementwise_launch(n))) }.w()?;
        Ok(())
    }

    fn argmax(&mut self, x: Buf) -> Result<Vec<u32>> {
        let (rows, n) = (self.dims.batch, i32_of(self.dims.vocab)?);
        let (xp, op) = (self.buf(x), self.io[1]);
        let mut lb = self.stream.launch_builder(&self.f.argmax);
        lb.arg(&xp).arg(&op).arg(&rows).arg(&n);
        unsafe { lb.launch(config(reft_kernels::row_launch(rows))) }.w()?;
        let picks = self.stream.clone_dtoh(&self.picks).w()?;
        self.stream.synchronize().w()?;
        Ok(picks)
    }

    /// Without a graph, the launches; with one, its replay (captured on the first step).
    fn run(&mut self, d: &StepDims, past: usize) -> Result<()> {
        let Some(mut g) = self.graphed.take() else {
            return run_step(self, d, past);
        };
        let stream = self.stream.clone();
        let ran = g.run(&stream, || run_step(self, d, past));
        self.graphed = Some(g);
        ran
    }

    fn read(&mut self, x: Buf) -> Result<Vec<f32>> {
        let i = Buf::ALL.iter().position(|b| *b == x).expect("every Buf is in ALL");
        let v = self.stream.clone_dtoh(&self._bufs[i]).w()?;
        self.stream.synchronize().w()?;
        Ok(v.into_iter().map(|x| x.to_f64() as f32).collect())
    }
}
