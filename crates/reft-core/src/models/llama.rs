//! A Llama-family decoder (Llama, Mistral, Qwen2) that we own, with intervention sites.
//!
//! Follows transformers' `models/llama/modeling_llama.py` (eager attention): pre-norm blocks,
//! RMSNorm, rotary embeddings in the rotate-half layout, grouped-query attention, SwiGLU MLP.
//! Differences from upstream, all deliberate: every op has a proven backward (`crate::ops`),
//! frozen projections produce only input gradients, hidden states are exposed at four sites per
//! layer through [`Hooks`], and the LM head can run on selected rows only.

use super::config::DecoderConfig;
use super::hooks::{Edited, Hooks};
pub use super::kv_cache::KvCache;
use super::kv_cache::CacheSlot;
use crate::ops::{add_rms_norm, attend, frozen_linear, qkv_heads, qkv_heads_into_cache, qkv_into_cache_applies, rms_norm, rope_heads, swiglu, swiglu_packed, FrozenLinear, RopeTables};
use candle_core::{DType, Device, Tensor, D};

/// Where in a layer an intervention reads and writes the hidden state (pyvene's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The residual stream entering the layer.
    BlockInput,
    /// The attention block's output (after `o_proj`, before the residual add).
    AttentionOutput,
    /// The MLP's output (after `down_proj`, before the residual add).
    MlpOutput,
    /// The residual stream leaving the layer (pyreft's default).
    BlockOutput,
}

impl Component {
    pub fn as_str(&self) -> &'static str {
        match self {
            Component::BlockInput => "block_input",
            Component::AttentionOutput => "attention_output",
            Component::MlpOutput => "mlp_output",
            Component::BlockOutput => "block_output",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "block_input" => Component::BlockInput,
            "attention_output" => Component::AttentionOutput,
            "mlp_output" => Component::MlpOutput,
            "block_output" => Component::BlockOutput,
            _ => return None,
        })
    }
}

/// Frozen weights of one decoder layer.
pub struct LayerWeights {
    pub input_norm: Tensor,
    pub q: FrozenLinear,
    pub k: FrozenLinear,
    pub v: FrozenLinear,
    pub o: FrozenLinear,
    pub post_norm: Tensor,
    pub gate: FrozenLinear,
    pub up: FrozenLinear,
    pub down: FrozenLinear,
    /// q/k/v and gate/up packed into one matrix each (`packed.rs`; the fields above are then
    /// views of them), or `None`.
    pub packed: Option<super::packed::Packed>,
}

/// What every layer of one forward shares ([`Decoder::prepare`]).
pub struct Prepared {
    mask: Tensor,
    rope: RopeTables,
    past: usize,
}

/// One forward call's inputs beyond the token ids.
pub struct ForwardInput<'a> {
    /// `[b, t]` token ids (u32).
    pub ids: &'a Tensor,
    /// `[b, t_past + t]`, 1 for real tokens; covers the cached keys too.
    pub key_mask: &'a [u8],
    /// Position id of every new token, per row.
    pub position_ids: &'a [Vec<i64>],
}

/// A decoder with frozen weights.
pub struct Decoder {
    pub cfg: DecoderConfig,
    pub embed: Tensor,
    pub layers: Vec<LayerWeights>,
    pub norm: Tensor,
    /// `[vocab, hidden]`; the embedding itself when tied.
    pub lm_head: Tensor,
    pub inv_freq: Vec<f64>,
    pub device: Device,
    pub dtype: DType,
}

impl Decoder {
    /// Runs the layers and returns the final hidden state before the last norm, `[b, t, d]`.
    pub fn hidden_states(
        &self,
        input: &ForwardInput,
        hooks: &dyn Hooks,
        cache: Option<&mut KvCache>,
    ) -> candle_core::Result<Tensor> {
        self.run_layers(input, hooks, cache, 0..self.layers.len(), None)
    }

    /// Runs layers `layers` (hooks included). `h_in` is the hidden state entering the first of
    /// them (`None` = the token embeddings, which requires starting at layer 0).
    pub fn run_layers(
        &self,
        input: &ForwardInput,
        hooks: &dyn Hooks,
        cache: Option<&mut KvCache>,
        layers: std::ops::Range<usize>,
        h_in: Option<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let past = cache.as_ref().map(|c| c.past_len()).unwrap_or(0);
        let prep = self.prepare(input, past)?;
        self.run_prepared(&prep, input, hooks, cache, layers, h_in)
    }

    /// The attention mask and rotary tables of `input` after `past` cached positions, which every
    /// layer of a forward shares: a caller that runs the layers one at a time (recomputation)
    /// makes them once instead of once per layer.
    pub fn prepare(&self, input: &ForwardInput, past: usize) -> candle_core::Result<Prepared> {
        let (b, t) = input.ids.dims2()?;
        let total = past + t;
        if input.key_mask.len() != b * total {
            candle_core::bail!("key mask has {} entries, expected {}", input.key_mask.len(), b * total);
        }
        Ok(Prepared {
            mask: self.additive_mask(input.key_mask, b, t, past)?,
            rope: RopeTables::new(&self.inv_freq, input.position_ids, self.dtype, &self.device)?,
            past,
        })
    }

    /// [`Self::run_layers`] with the mask and tables made by [`Self::prepare`] for the same
    /// input and cache length.
    pub fn run_prepared(
        &self,
        prep: &Prepared,
        input: &ForwardInput,
        hooks: &dyn Hooks,
        mut cache: Option<&mut KvCache>,
        layers: std::ops::Range<usize>,
        h_in: Option<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let past = cache.as_ref().map(|c| c.past_len()).unwrap_or(0);
        if past != prep.past {
            candle_core::bail!("prepared for {} cached positions, the cache has {past}", prep.past);
        }
        let (mask, rope) = (&prep.mask, &prep.rope);
        let mut h = Edited::plain(match h_in {
            Some(h) => h,
            None => self.embed_tokens(input.ids)?,
        });
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize_with(self.layers.len(), || None);
        }
        let (eps, block_ops) = (self.cfg.rms_norm_eps, crate::ops::block_ops_on(&self.device));
        let mut normed: Option<Tensor> = None;
        for (l, w) in self.layers.iter().enumerate().skip(layers.start).take(layers.len()) {
            // With a graph, each sublayer is one node on CUDA (`llama_block.rs`); a node also
            // applies the edit pending on its input and the residual add after it, unless an
            // intervention sits between the sublayer and that add.
            if hooks.edits(l, Component::BlockInput) {
                let x = h.materialize()?;
                h = if block_ops && x.track_op() { hooks.apply_pending(l, Component::BlockInput, x)? } else { Edited::plain(hooks.apply(l, Component::BlockInput, x)?) };
            }
            let slot = cache.as_deref_mut().map(|c| c.slot(l));
            // Outside the block nodes a residual add also yields the next sublayer's normalised
            // input (`add_rms_norm`: one kernel on CUDA without a graph, else the same two ops);
            // `normed` carries it across a layer boundary no intervention edits.
            let (h_mid, post) = if block_ops && h.track_op() && !hooks.edits(l, Component::AttentionOutput) {
                (self.attention_node(w, h, mask, rope, slot, true)?, None)
            } else {
                let x = h.materialize()?;
                let attn = if block_ops && x.track_op() {
                    self.attention_node(w, Edited::plain(x.clone()), mask, rope, slot, false)?
                } else {
                    let xn = match normed.take() {
                        Some(n) => n,
                        None => rms_norm(&x, &w.input_norm, eps)?,
                    };
                    self.attention(w, &xn, mask, rope, slot)?
                };
                let a = hooks.apply(l, Component::AttentionOutput, attn)?;
                if block_ops && (x.track_op() || a.track_op()) {
                    ((x + a)?, None)
                } else {
                    let (s, n) = add_rms_norm(&x, &a, &w.post_norm, eps)?;
                    (s, Some(n))
                }
            };
            normed = None;
            let tracked = block_ops && h_mid.track_op();
            let h_out = if tracked && !hooks.edits(l, Component::MlpOutput) {
                self.mlp_node(w, l, &h_mid, true)?
            } else {
                let mlp = if tracked {
                    self.mlp_node(w, l, &h_mid, false)?
                } else {
                    let xn = match post {
                        Some(n) => n,
                        None => rms_norm(&h_mid, &w.post_norm, eps)?,
                    };
                    self.mlp(w, &xn)?
                };
                let m = hooks.apply(l, Component::MlpOutput, mlp)?;
                let plain = !(block_ops && (h_mid.track_op() || m.track_op()));
                let edited = hooks.edits(l, Component::BlockOutput) || hooks.edits(l + 1, Component::BlockInput);
                match self.layers.get(l + 1) {
                    Some(next) if plain && !edited && l + 1 < layers.end => {
                        let (s, n) = add_rms_norm(&h_mid, &m, &next.input_norm, eps)?;
                        normed = Some(n);
                        s
                    }
                    _ => (h_mid + m)?,
                }
            };
            h = if block_ops && h_out.track_op() {
                hooks.apply_pending(l, Component::BlockOutput, h_out)?
            } else {
                Edited::plain(hooks.apply(l, Component::BlockOutput, h_out)?)
            };
        }
        h.materialize()
    }

    /// Token embeddings of `[b, t]` ids: `[b, t, d]`.
    pub fn embed_tokens(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, self.cfg.hidden_size))
    }

    /// Final norm + LM head on hidden rows `[n, d]` (or `[b, t, d]`) → logits.
    pub fn logits(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        frozen_linear(&self.final_norm(h)?, &self.lm_head)
    }

    /// The final RMSNorm (the LM head's input).
    pub fn final_norm(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        rms_norm(h, &self.norm, self.cfg.rms_norm_eps)
    }

    /// Additive mask for the grouped queries of `attention`: `[b, 1, g·t, total]` with `g` query
    /// heads per key head, where row `r·t + i` (any `r`) masks query `past + i` (causal, sliding
    /// window, padded keys). A single query (`t == 1`, decoding) needs one row per sequence.
    /// The host fills the causal rows shared by every sequence and the device combines them with
    /// each sequence's key row, `g` times (`mask.rs`): built whole on the host, the 1.1B anchor
    /// batch's mask (16 × 2048 × 256) cost about 20 ms a forward.
    fn additive_mask(&self, key_mask: &[u8], b: usize, t: usize, past: usize) -> candle_core::Result<Tensor> {
        // A decoding step's single query row serves every head; longer inputs repeat each
        // sequence's rows for the query heads sharing a key head (`attend`'s layout).
        let g = if t == 1 { 1 } else { self.cfg.num_heads / self.cfg.num_kv_heads };
        super::mask::additive_mask(key_mask, b, t, past, self.cfg.sliding_window, g, &self.device)
    }

    /// The `t` distinct rows per sequence of [`Self::additive_mask`] on the host, `[b, t, past + t]`
    /// (the static decoding step uploads them as they are).
    pub(crate) fn mask_rows(&self, key_mask: &[u8], b: usize, t: usize, past: usize) -> Vec<f32> {
        super::mask::additive_rows(key_mask, b, t, past, self.cfg.sliding_window)
    }

    fn attention(
        &self,
        w: &LayerWeights,
        x: &Tensor,
        mask: &Tensor,
        rope: &RopeTables,
        cache: Option<CacheSlot<'_>>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let hd = self.cfg.head_dim;
        let (q, k, v, _) = self.queries_keys_values(w, x, rope, cache)?;
        // The softmax runs in f32 for half-precision models (f64 stays f64 for gradchecks); the
        // scores are not kept for the backward (`ops/attention_probs.rs`).
        let out = attend(&q, &k, &v, mask, 1.0 / (hd as f64).sqrt(), self.dtype)?; // [b, kv, g·t, hd]
        w.o.forward(&self.merge_heads(&out, b, t)?)
    }

    /// The rotated queries `[b, kv, g·t, hd]` (grouped, below), keys and values
    /// `[b, kv, past + t, hd]` of `x` `[b, t, d]`, and `past`, the cached positions before `x`'s.
    /// `cache` gets the keys and values with `x`'s appended (no graph: decoding is inference
    /// only, and training's cached positions are constants).
    ///
    /// Grouped-query attention without repeating keys and values: the query heads that share a
    /// key head (head h = kv·g + r, the order of HF's repeat_kv) become g·t query rows of that
    /// head, and the mask has a row for each (`additive_mask`).
    pub(super) fn queries_keys_values(
        &self,
        w: &LayerWeights,
        x: &Tensor,
        rope: &RopeTables,
        cache: Option<CacheSlot<'_>>,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor, usize)> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.head_dim);
        let heads = |y: Tensor, n: usize| y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous();
        let mut cache = cache;
        // Decoding into a reserved cache on CUDA: the split writes the keys and values there.
        if let (Some(p), Some(slot)) = (&w.packed, cache.as_mut()) {
            if qkv_into_cache_applies(x, rope, hd) {
                if let Some((kc, vc, past)) = slot.room((b, nkv, t, hd), x.dtype(), x.device())? {
                    let q = qkv_heads_into_cache(&p.qkv.forward(x)?, rope, nh, nkv, hd, &kc, &vc, past)?;
                    let (k, v) = cache.take().expect("matched above").filled(past + t)?;
                    return Ok((q.reshape((b, nkv, (nh / nkv) * t, hd))?, k, v, past));
                }
            }
        }
        let (q, mut k, mut v) = match &w.packed {
            // Packed weights: one GEMM, then one split (`ops/packed.rs`); without a graph only,
            // as the block nodes and inference run it (the op-by-op graph takes the views).
            Some(p) if !x.track_op() => qkv_heads(&p.qkv.forward(x)?, rope, nh, nkv, hd)?,
            // The rotation reads the projections' rows (`rope_heads`: on CUDA without a copy first).
            _ => (
                rope_heads(&w.q.forward(x)?.reshape((b, t, nh, hd))?, rope)?,
                rope_heads(&w.k.forward(x)?.reshape((b, t, nkv, hd))?, rope)?,
                heads(w.v.forward(x)?, nkv)?,
            ),
        };
        let mut past = 0;
        if let Some(slot) = cache {
            (k, v, past) = slot.append(k, v)?;
        }
        Ok((q.reshape((b, nkv, (nh / nkv) * t, hd))?, k, v, past))
    }

    /// `down(swiglu(gate(x), up(x)))`, by the packed gate/up GEMM when there is no graph.
    fn mlp(&self, w: &LayerWeights, x: &Tensor) -> candle_core::Result<Tensor> {
        match &w.packed {
            Some(p) if !x.track_op() => w.down.forward(&swiglu_packed(&p.gate_up.forward(x)?, w.gate.out_dim())?),
            _ => w.down.forward(&swiglu(&w.gate.forward(x)?, &w.up.forward(x)?)?),
        }
    }

    /// Attention output `[b, kv, g·t, hd]` as rows `[b, t, heads·hd]` for the output projection.
    pub(super) fn merge_heads(&self, out: &Tensor, b: usize, t: usize) -> candle_core::Result<Tensor> {
        let (nh, hd) = (self.cfg.num_heads, self.cfg.head_dim);
        out.reshape((b, nh, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, nh * hd))
    }

    /// Number of parameters of the frozen model (the tied head counted once, as HF does).
    pub fn num_parameters(&self) -> usize {
        let lin = |l: &FrozenLinear| l.weight.elem_count() + l.bias.as_ref().map(|b| b.elem_count()).unwrap_or(0);
        let mut n = self.embed.elem_count() + self.norm.elem_count();
        if !self.cfg.tie_word_embeddings {
            n += self.lm_head.elem_count();
        }
        for w in &self.layers {
            n += w.input_norm.elem_count() + w.post_norm.elem_count();
            n += lin(&w.q) + lin(&w.k) + lin(&w.v) + lin(&w.o) + lin(&w.gate) + lin(&w.up) + lin(&w.down);
        }
        n
    }
}

/// Shape helper used by callers that flatten rows.
pub fn hidden_rows(h: &Tensor) -> candle_core::Result<Tensor> {
    let d = h.dim(D::Minus1)?;
    h.reshape(((), d))
}
