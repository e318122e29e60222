//! A BERT-family encoder (BERT, RoBERTa, XLM-R) that we own, with intervention sites.
//!
//! Follows transformers' `models/bert/modeling_bert.py` (eager attention): word + position +
//! token-type embeddings and a LayerNorm, then post-norm layers
//! `a = LN(h + O·attn(h))`, `h' = LN(a + W₂·gelu(W₁·a))`, bidirectional attention with a
//! key padding mask. Sites per layer, as in the decoder: `block_input` (h), `attention_output`
//! (O·attn, before the residual add), `mlp_output` (W₂·gelu(·), before the residual add) and
//! `block_output` (h', which is also what pyreft's `roberta.encoder.layer[l].output` sees).

use super::mask::MASKED;
use super::encoder_config::EncoderConfig;
use super::hooks::Hooks;
use super::llama::Component;
use crate::ops::{attend, gelu, layer_norm, FrozenLinear};
use candle_core::{DType, Device, Tensor};

/// A LayerNorm's frozen gain and bias.
pub struct Norm {
    pub weight: Tensor,
    pub bias: Tensor,
}

/// Frozen weights of one encoder layer.
pub struct EncoderLayer {
    pub q: FrozenLinear,
    pub k: FrozenLinear,
    pub v: FrozenLinear,
    pub o: FrozenLinear,
    pub attn_norm: Norm,
    pub up: FrozenLinear,
    pub down: FrozenLinear,
    pub out_norm: Norm,
}

/// A classification head found in the checkpoint (`classifier.*`), used to initialise ours.
pub struct StoredHead {
    /// RoBERTa's `classifier.dense` (BERT keeps its dense layer in `pooler`).
    pub dense: Option<(Tensor, Tensor)>,
    /// `classifier.weight` / `classifier.out_proj.weight` and bias: `[num_labels, hidden]`.
    pub out: (Tensor, Tensor),
}

/// One forward call's inputs (host arrays; the encoder builds its own tensors).
pub struct EncoderInput<'a> {
    pub ids: &'a [u32],
    pub batch_size: usize,
    pub seq_len: usize,
    /// Segment ids (`token_type_ids`); `None` = all zeros.
    pub token_types: Option<&'a [u32]>,
    /// 1 for real tokens.
    pub key_mask: &'a [u8],
}

/// An encoder with frozen weights.
pub struct Encoder {
    pub cfg: EncoderConfig,
    pub word: Tensor,
    pub position: Tensor,
    pub token_type: Tensor,
    pub embed_norm: Norm,
    pub layers: Vec<EncoderLayer>,
    /// BERT's pooler (dense + tanh on the first token), when the checkpoint has one.
    pub pooler: Option<FrozenLinear>,
    pub stored_head: Option<StoredHead>,
    pub device: Device,
    pub dtype: DType,
}

impl Encoder {
    /// Embeddings: word + position + token type, then LayerNorm → `[b, t, d]`.
    pub fn embed(&self, input: &EncoderInput) -> candle_core::Result<Tensor> {
        let (b, t, d) = (input.batch_size, input.seq_len, self.cfg.hidden_size);
        let ids = Tensor::from_slice(input.ids, b * t, &self.device)?;
        let mut pos = Vec::with_capacity(b * t);
        for r in 0..b {
            for p in self.cfg.position_ids(&input.ids[r * t..(r + 1) * t]) {
                if p < 0 || p as usize >= self.cfg.max_position_embeddings {
                    candle_core::bail!(
                        "position {p} exceeds max_position_embeddings {} (sequence too long)",
                        self.cfg.max_position_embeddings
                    );
                }
                pos.push(p as u32);
            }
        }
        let pos = Tensor::from_vec(pos, b * t, &self.device)?;
        let types = match input.token_types {
            Some(tt) => {
                if let Some(&bad) = tt.iter().find(|&&x| x as usize >= self.cfg.type_vocab_size) {
                    candle_core::bail!("token type {bad} out of range 0..{}", self.cfg.type_vocab_size);
                }
                Tensor::from_slice(tt, b * t, &self.device)?
            }
            None => Tensor::zeros(b * t, DType::U32, &self.device)?,
        };
        let e = (self.word.index_select(&ids, 0)? + self.position.index_select(&pos, 0)?)?;
        let e = (e + self.token_type.index_select(&types, 0)?)?;
        let e = layer_norm(&e, &self.embed_norm.weight, &self.embed_norm.bias, self.cfg.layer_norm_eps)?;
        e.reshape((b, t, d))
    }

    /// Runs layers `layers` with hooks. `h_in` is the hidden state entering the first of them
    /// (`None` = the embeddings, which requires starting at layer 0). Returns `[b, t, d]`.
    pub fn run_layers(
        &self,
        input: &EncoderInput,
        hooks: &dyn Hooks,
        layers: std::ops::Range<usize>,
        h_in: Option<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t) = (input.batch_size, input.seq_len);
        if input.key_mask.len() != b * t || input.ids.len() != b * t {
            candle_core::bail!("encoder input has {} ids / {} mask entries, expected {}", input.ids.len(), input.key_mask.len(), b * t);
        }
        let mask = self.additive_mask(input.key_mask, b, t)?;
        let mut h = match h_in {
            Some(h) => h,
            None => self.embed(input)?,
        };
        let eps = self.cfg.layer_norm_eps;
        for (l, w) in self.layers.iter().enumerate().skip(layers.start).take(layers.len()) {
            h = hooks.apply(l, Component::BlockInput, h)?;
            let attn = self.attention(w, &h, &mask)?;
            let attn = hooks.apply(l, Component::AttentionOutput, attn)?;
            let a = layer_norm(&(h + attn)?, &w.attn_norm.weight, &w.attn_norm.bias, eps)?;
            let mlp = w.down.forward(&gelu(&w.up.forward(&a)?)?)?;
            let mlp = hooks.apply(l, Component::MlpOutput, mlp)?;
            h = layer_norm(&(a + mlp)?, &w.out_norm.weight, &w.out_norm.bias, eps)?;
            h = hooks.apply(l, Component::BlockOutput, h)?;
        }
        Ok(h)
    }

    /// `[b, 1, 1, t]` additive key mask (HF's extended attention mask).
    fn additive_mask(&self, key_mask: &[u8], b: usize, t: usize) -> candle_core::Result<Tensor> {
        let m: Vec<f32> = key_mask.iter().map(|&k| if k != 0 { 0.0 } else { MASKED }).collect();
        Tensor::from_vec(m, (b, 1, 1, t), &self.device)
    }

    fn attention(&self, w: &EncoderLayer, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, hd) = (self.cfg.num_heads, self.cfg.head_dim());
        let split = |y: Tensor| -> candle_core::Result<Tensor> { y.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous() };
        let q = split(w.q.forward(x)?)?;
        let k = split(w.k.forward(x)?)?;
        let v = split(w.v.forward(x)?)?;
        let out = attend(&q, &k, &v, mask, 1.0 / (hd as f64).sqrt(), self.dtype)?;
        let out = out.transpose(1, 2)?.contiguous()?.reshape((b, t, nh * hd))?;
        w.o.forward(&out)
    }

    /// Parameters of the frozen encoder (embeddings, layers and pooler; not a stored head).
    pub fn num_parameters(&self) -> usize {
        let lin = |l: &FrozenLinear| l.weight.elem_count() + l.bias.as_ref().map(|b| b.elem_count()).unwrap_or(0);
        let norm = |n: &Norm| n.weight.elem_count() + n.bias.elem_count();
        let mut n = self.word.elem_count() + self.position.elem_count() + self.token_type.elem_count() + norm(&self.embed_norm);
        for w in &self.layers {
            n += lin(&w.q) + lin(&w.k) + lin(&w.v) + lin(&w.o) + lin(&w.up) + lin(&w.down);
            n += norm(&w.attn_norm) + norm(&w.out_norm);
        }
        n + self.pooler.as_ref().map(lin).unwrap_or(0)
    }
}
