//! A decoding step as a fixed sequence of kernels over buffers reserved once (the static
//! decoding step), for generation on a GPU.
//!
//! Through candle, a decoding step of the 1.1B anchor model (batch 8, 22 layers) cost 4.8 ms on
//! an H200 where its weights take 0.5 ms to read: each of about 460 ops paid candle's host
//! overhead (a tensor, an allocation, layout checks) on top of its launch. Here a step is 8
//! kernels per layer (two of them cuBLAS GEMMs of packed weights), each writing into a buffer
//! made once, from one upload of the step's token ids, key mask and rotary rows to one
//! download of the next ids. Interventions act in the prefill only (`generate.rs`), so the
//! step is the bare model; the keys and values go into the cache the prefill reserved.
//!
//! The sequence lives here once, over [`StepKernels`]: the CUDA backend (`cuda.rs`) launches
//! it, and `tests/decode_step.rs` runs it on the kernels' host emulation against the candle
//! decoder, which proves the sequence, the buffers it names and the kernels without a GPU.

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
mod graph;

/// Decoding steps this process has run as a replay of a captured CUDA graph
/// (`REFT_DECODE_GRAPH=1`; always 0 without the `cuda` feature). A capture that fails decodes
/// correctly without the graph, so only this tells a check that the graph ran.
pub fn graph_replays() -> usize {
    GRAPH_REPLAYS.load(std::sync::atomic::Ordering::Relaxed)
}

static GRAPH_REPLAYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

use crate::models::Decoder;
use candle_core::Result;

/// The sizes a step needs (from the decoder's config, the batch and the cache capacity).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDims {
    pub batch: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub layers: usize,
    /// Positions reserved per layer in the cache.
    pub capacity: usize,
    pub eps: f32,
}

impl StepDims {
    pub fn of(dec: &Decoder, batch: usize, capacity: usize) -> Self {
        let c = &dec.cfg;
        Self {
            batch,
            hidden: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            intermediate: c.intermediate_size,
            vocab: c.vocab_size,
            layers: dec.layers.len(),
            capacity,
            eps: c.rms_norm_eps as f32,
        }
    }

    /// Width of the packed q/k/v rows.
    pub fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }
}

/// The step's activation buffers, each `[batch, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// The residual stream entering a layer (and leaving the last one).
    Hidden,
    /// The residual stream between a layer's attention and its MLP.
    Mid,
    /// The next GEMM's normalised input.
    Normed,
    /// Packed q/k/v projection rows.
    Qkv,
    /// Rotated queries `[batch, heads, head_dim]`.
    Query,
    /// The attention's output rows.
    Attn,
    /// A sublayer's output projection.
    Proj,
    /// Packed gate/up projection rows.
    GateUp,
    /// SwiGLU's output.
    Act,
    Logits,
}

impl Buf {
    pub const ALL: [Buf; 10] = [Buf::Hidden, Buf::Mid, Buf::Normed, Buf::Qkv, Buf::Query, Buf::Attn, Buf::Proj, Buf::GateUp, Buf::Act, Buf::Logits];

    /// Values per batch row.
    pub fn width(self, d: &StepDims) -> usize {
        match self {
            Buf::Hidden | Buf::Mid | Buf::Normed | Buf::Proj => d.hidden,
            Buf::Qkv => d.qkv_width(),
            Buf::Query | Buf::Attn => d.heads * d.head_dim,
            Buf::GateUp => 2 * d.intermediate,
            Buf::Act => d.intermediate,
            Buf::Logits => d.vocab,
        }
    }
}

/// A frozen weight matrix `[out, in]` of the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mat {
    Qkv(usize),
    O(usize),
    GateUp(usize),
    Down(usize),
    LmHead,
}

/// An RMSNorm gain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gain {
    Input(usize),
    Post(usize),
    Final,
}

/// What one step uploads: the token ids `[batch]`, the additive key mask `[batch, keys]` and the
/// rotary tables of the new positions `[batch, head_dim]`, as the candle decoder makes them.
pub struct StepInputs {
    pub ids: Vec<u32>,
    pub mask: Vec<f32>,
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    /// Keys the step attends to (the cached ones and its own).
    pub keys: usize,
}

impl StepInputs {
    /// The inputs of the step that adds `ids` after `past` cached positions, for the key mask
    /// `[batch, past + 1]` and each row's position id.
    pub fn new(dec: &Decoder, ids: Vec<u32>, key_mask: &[u8], positions: &[Vec<i64>], past: usize) -> Self {
        let b = ids.len();
        let (cos, sin) = crate::ops::host_tables(&dec.inv_freq, positions);
        Self { mask: dec.mask_rows(key_mask, b, 1, past), cos, sin, ids, keys: past + 1 }
    }
}

impl StepInputs {
    /// The key mask laid out `[batch, capacity]` (a CUDA graph's fixed stride); the columns past
    /// the keys are never read.
    pub fn mask_strided(&self, capacity: usize) -> Vec<f32> {
        let b = self.ids.len();
        let mut m = vec![0f32; b * capacity];
        for r in 0..b {
            m[r * capacity..r * capacity + self.keys].copy_from_slice(&self.mask[r * self.keys..(r + 1) * self.keys]);
        }
        m
    }
}

/// The kernels of a step, over buffers a backend owns (see the module).
pub trait StepKernels {
    /// Copies the step's inputs to the device.
    fn upload(&mut self, inputs: &StepInputs) -> Result<()>;
    /// `y` = the embeddings of the uploaded ids.
    fn embed(&mut self, y: Buf) -> Result<()>;
    /// `y = rms_norm(x)·w`.
    fn rms_norm(&mut self, x: Buf, w: Gain, y: Buf) -> Result<()>;
    /// `s = x + r` and `y = rms_norm(s)·w`, in one kernel.
    fn add_rms_norm(&mut self, x: Buf, r: Buf, w: Gain, s: Buf, y: Buf) -> Result<()>;
    /// `y = x·Wᵀ`.
    fn linear(&mut self, x: Buf, w: Mat, y: Buf) -> Result<()>;
    /// Splits the packed rows `rows` into rotated queries `q` and layer `layer`'s cache (keys
    /// rotated, values as they are) at position `at`.
    fn qkv_into_cache(&mut self, rows: Buf, q: Buf, layer: usize, at: usize) -> Result<()>;
    /// `y = softmax(q·kᵀ/√hd + mask)·v` over the first `keys` cached positions of `layer`.
    fn attention(&mut self, q: Buf, layer: usize, keys: usize, y: Buf) -> Result<()>;
    /// `y = silu(gate)·up` of the packed rows `x`.
    fn swiglu(&mut self, x: Buf, y: Buf) -> Result<()>;
    /// Each row's first largest value's index (the greedy pick), on the host.
    fn argmax(&mut self, x: Buf) -> Result<Vec<u32>>;
    /// The buffer on the host as f32.
    fn read(&mut self, x: Buf) -> Result<Vec<f32>>;
    /// Runs the step's kernels after `past` cached positions ([`run_step`]; a backend may
    /// replay them as one recorded graph).
    fn run(&mut self, d: &StepDims, past: usize) -> Result<()> {
        run_step(self, d, past)
    }
}

/// Runs one decoding step after `past` cached positions, from the uploaded inputs to the
/// logits in [`Buf::Logits`]; the layer's keys and values go to cache position `past`.
pub fn run_step<K: StepKernels + ?Sized>(k: &mut K, d: &StepDims, past: usize) -> Result<()> {
    if past >= d.capacity {
        candle_core::bail!("static decoding step: position {past} is past the cache's {} positions", d.capacity);
    }
    k.embed(Buf::Hidden)?;
    k.rms_norm(Buf::Hidden, Gain::Input(0), Buf::Normed)?;
    for l in 0..d.layers {
        k.linear(Buf::Normed, Mat::Qkv(l), Buf::Qkv)?;
        k.qkv_into_cache(Buf::Qkv, Buf::Query, l, past)?;
        k.attention(Buf::Query, l, past + 1, Buf::Attn)?;
        k.linear(Buf::Attn, Mat::O(l), Buf::Proj)?;
        k.add_rms_norm(Buf::Hidden, Buf::Proj, Gain::Post(l), Buf::Mid, Buf::Normed)?;
        k.linear(Buf::Normed, Mat::GateUp(l), Buf::GateUp)?;
        k.swiglu(Buf::GateUp, Buf::Act)?;
        k.linear(Buf::Act, Mat::Down(l), Buf::Proj)?;
        // The residual add, fused with the next layer's input norm (or the final norm).
        let next = if l + 1 < d.layers { Gain::Input(l + 1) } else { Gain::Final };
        k.add_rms_norm(Buf::Mid, Buf::Proj, next, Buf::Hidden, Buf::Normed)?;
    }
    k.linear(Buf::Normed, Mat::LmHead, Buf::Logits)
}

/// What a step returns: the greedy picks, or the logits `[batch, vocab]` for sampling.
pub enum StepOutput {
    Tokens(Vec<u32>),
    Logits(Vec<Vec<f32>>),
}

/// A generation's decoding steps on a backend: the kernels, their sizes and the positions
/// cached so far.
pub struct StaticDecoder {
    kernels: Box<dyn StepKernels>,
    dims: StepDims,
    past: usize,
}

impl StaticDecoder {
    /// Decoding after `past` cached positions (the prefill's) on `kernels`.
    pub fn new(kernels: Box<dyn StepKernels>, dims: StepDims, past: usize) -> Self {
        Self { kernels, dims, past }
    }

    /// Positions cached so far.
    pub fn past(&self) -> usize {
        self.past
    }

    /// One step for the token ids `ids` (one per row) whose key mask, covering the cached
    /// positions and theirs, is `key_mask` `[batch, past + 1]` and whose position ids are
    /// `positions`; greedy picks on the device, else the logits.
    pub fn step(&mut self, dec: &Decoder, ids: Vec<u32>, key_mask: &[u8], positions: &[Vec<i64>], greedy: bool) -> Result<StepOutput> {
        let b = self.dims.batch;
        if ids.len() != b || key_mask.len() != b * (self.past + 1) || positions.len() != b || positions.iter().any(|p| p.len() != 1) {
            candle_core::bail!("static decoding step: {} ids, {} mask entries and {} position rows for a batch of {b} after {} positions", ids.len(), key_mask.len(), positions.len(), self.past);
        }
        if self.past >= self.dims.capacity {
            candle_core::bail!("static decoding step: position {} is past the cache's {} positions", self.past, self.dims.capacity);
        }
        self.kernels.upload(&StepInputs::new(dec, ids, key_mask, positions, self.past))?;
        self.kernels.run(&self.dims, self.past)?;
        self.past += 1;
        if greedy {
            return Ok(StepOutput::Tokens(self.kernels.argmax(Buf::Logits)?));
        }
        let v = self.dims.vocab;
        let flat = self.kernels.read(Buf::Logits)?;
        Ok(StepOutput::Logits(flat.chunks(v).map(|r| r.to_vec()).collect()))
    }

    /// The static step for decoding `batch` rows on `dec` after the prefill that filled
    /// `cache`, where it applies: a CUDA decoder with packed projections and no biases, the fused
    /// kernels on, a cache reserved for the whole generation, and the switch on
    /// (`ops::set_static_decode`, `REFT_STATIC_DECODE`). `None` elsewhere: the candle path
    /// decodes then.
    pub fn for_device(dec: &Decoder, cache: &crate::models::KvCache, batch: usize) -> Result<Option<Self>> {
        #[cfg(feature = "cuda")]
        if crate::ops::static_decode_on() && dec.device.is_cuda() && crate::ops::fused_cuda_kernels_on() {
            return cuda::build(dec, cache, batch);
        }
        let _ = (dec, cache, batch);
        Ok(None)
    }
}

/// Whether `dec` has what the static step computes (packed projections without biases, an even
/// head size of at most 256), and every layer's cache is reserved with `past` positions filled
/// and room for more. A sliding window needs nothing more: the key mask is the decoder's own.
pub fn applies(dec: &Decoder, cache: &crate::models::KvCache, past: usize) -> bool {
    let hd = dec.cfg.head_dim;
    let layers_ok = dec.layers.iter().all(|w| match &w.packed {
        Some(p) => p.qkv.bias.is_none() && p.gate_up.bias.is_none() && w.o.bias.is_none() && w.down.bias.is_none(),
        None => false,
    });
    let cache_ok = (0..dec.layers.len()).all(|l| match (cache.reserved(l), cache.layers.get(l)) {
        (Some(_), Some(Some((k, _)))) => k.dims()[2] == past,
        _ => false,
    });
    layers_ok && cache_ok && hd % 2 == 0 && hd <= 256 && past > 0 && past < cache.capacity
}
