//! Loading a llama-architecture GGUF file (llama.cpp's format): metadata → [`DecoderConfig`],
//! tensors dequantized to the working dtype at load (any quant type Candle reads), and the
//! Q/K row permutation of llama.cpp's converter undone so the HF rotate-half RoPE applies.
//! Follows llama.cpp `convert_hf_to_gguf.py` (`LlamaModel.permute`) and `gguf-py` key names.
//! The file is read from disk ([`GgufFile::open`]) or from memory ([`GgufFile::from_bytes`]).

use super::config::{Architecture, DecoderConfig};
use super::llama::{Decoder, LayerWeights};
use crate::error::{ReftError, Result};
use crate::ops::FrozenLinear;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};
use std::io::{Read, Seek};
use std::path::Path;

/// What tensors are read from: an open file or an in-memory buffer.
trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

/// A parsed GGUF file: header content and the open reader.
pub struct GgufFile<'a> {
    pub content: Content,
    reader: Box<dyn Source + 'a>,
    path: std::path::PathBuf,
}

impl GgufFile<'static> {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| ReftError::io(path, e))?;
        Self::read(Box::new(file), path)
    }
}

impl<'a> GgufFile<'a> {
    /// A GGUF file held in memory; `path` only names it in errors.
    pub fn from_bytes(bytes: &'a [u8], path: &Path) -> Result<Self> {
        Self::read(Box::new(std::io::Cursor::new(bytes)), path)
    }

    fn read(mut reader: Box<dyn Source + 'a>, path: &Path) -> Result<Self> {
        let content = Content::read(&mut reader)
            .map_err(|e| ReftError::format(path, format!("not a readable GGUF file: {e}")))?;
        Ok(Self { content, reader, path: path.to_path_buf() })
    }

    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn meta_usize(&self, key: &str) -> Result<usize> {
        let v = self.meta(key).ok_or_else(|| ReftError::format(&self.path, format!("missing metadata `{key}`")))?;
        v.to_u64()
            .or_else(|_| v.to_u32().map(|x| x as u64))
            .map(|x| x as usize)
            .map_err(|e| ReftError::format(&self.path, format!("metadata `{key}`: {e}")))
    }

    fn meta_f64(&self, key: &str) -> Option<f64> {
        self.meta(key).and_then(|v| v.to_f32().map(|x| x as f64).or_else(|_| v.to_f64()).ok())
    }

    fn meta_u32(&self, key: &str) -> Option<u32> {
        self.meta(key).and_then(|v| v.to_u32().ok())
    }

    fn tensor(&mut self, name: &str, dtype: DType, device: &Device) -> Result<Tensor> {
        let q = self
            .content
            .tensor(&mut self.reader, name, device)
            .map_err(|e| ReftError::format(&self.path, format!("tensor `{name}`: {e}")))?;
        Ok(q.dequantize(device)?.to_dtype(dtype)?)
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }
}

/// Inverse of llama.cpp's `permute(w, n_head)`: rows grouped as (head, pair, half) go back to
/// (head, half, pair), restoring HF's rotate-half layout.
fn unpermute(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let hd = rows / n_head;
    w.reshape((n_head, hd / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

/// Builds the decoder from a GGUF file's llama tensors.
pub fn load_decoder(g: &mut GgufFile<'_>, dtype: DType, device: &Device) -> Result<Decoder> {
    let arch = g.meta("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
    if arch != "llama" {
        return Err(ReftError::UnsupportedModel(format!(
            "GGUF architecture `{arch}` in {}; supported: llama",
            g.path.display()
        )));
    }
    let hidden = g.meta_usize("llama.embedding_length")?;
    let heads = g.meta_usize("llama.attention.head_count")?;
    let kv = g.meta_usize("llama.attention.head_count_kv").unwrap_or(heads);
    let n_layers = g.meta_usize("llama.block_count")?;
    let embed = g.tensor("token_embd.weight", dtype, device)?;
    let vocab = embed.dims()[0];
    let cfg = DecoderConfig {
        architecture: Architecture::Llama,
        hidden_size: hidden,
        intermediate_size: g.meta_usize("llama.feed_forward_length")?,
        num_layers: n_layers,
        num_heads: heads,
        num_kv_heads: kv,
        head_dim: hidden / heads,
        vocab_size: vocab,
        rms_norm_eps: g.meta_f64("llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        rope_theta: g.meta_f64("llama.rope.freq_base").unwrap_or(10_000.0),
        rope_scaling: None,
        max_position_embeddings: g.meta_usize("llama.context_length").unwrap_or(4096),
        tie_word_embeddings: !g.has("output.weight"),
        attention_bias: false,
        sliding_window: None,
        bos_token_id: g.meta_u32("tokenizer.ggml.bos_token_id"),
        eos_token_ids: g.meta_u32("tokenizer.ggml.eos_token_id").into_iter().collect(),
        pad_token_id: g.meta_u32("tokenizer.ggml.padding_token_id"),
    };
    cfg.validate(&g.path.clone())?;
    let mut layers = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let p = format!("blk.{l}");
        let lin = |g: &mut GgufFile<'_>, n: &str| -> Result<FrozenLinear> {
            Ok(FrozenLinear::new(g.tensor(&format!("{p}.{n}.weight"), dtype, device)?, None))
        };
        let q = g.tensor(&format!("{p}.attn_q.weight"), dtype, device)?;
        let k = g.tensor(&format!("{p}.attn_k.weight"), dtype, device)?;
        layers.push(LayerWeights {
            input_norm: g.tensor(&format!("{p}.attn_norm.weight"), dtype, device)?,
            q: FrozenLinear::new(unpermute(&q, heads)?, None),
            k: FrozenLinear::new(unpermute(&k, kv)?, None),
            v: lin(g, "attn_v")?,
            o: lin(g, "attn_output")?,
            post_norm: g.tensor(&format!("{p}.ffn_norm.weight"), dtype, device)?,
            gate: lin(g, "ffn_gate")?,
            up: lin(g, "ffn_up")?,
            down: lin(g, "ffn_down")?,
            packed: None,
        });
    }
    let norm = g.tensor("output_norm.weight", dtype, device)?;
    let lm_head = if cfg.tie_word_embeddings { embed.clone() } else { g.tensor("output.weight", dtype, device)? };
    let inv_freq = cfg.inv_freq();
    Ok(Decoder { cfg, embed, layers, norm, lm_head, inv_freq, device: device.clone(), dtype }.packed_if_on()?)
}
