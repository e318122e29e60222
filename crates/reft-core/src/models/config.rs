//! The decoder configuration shared by the Llama family (Llama, Mistral, Qwen2), parsed from an
//! HF `config.json` or filled from GGUF metadata. Follows transformers'
//! `models/llama/configuration_llama.py` and `modeling_rope_utils.py` (default and llama3 rope).

use crate::error::{ReftError, Result};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// Which member of the Llama family a checkpoint is; they differ only in flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Mistral,
    Qwen2,
}

impl Architecture {
    pub fn as_str(&self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
        }
    }
}

/// llama3-style frequency scaling (`rope_type: "llama3"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// Decoder hyperparameters.
#[derive(Clone, Debug)]
pub struct DecoderConfig {
    pub architecture: Architecture,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3Scaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Qwen2 puts a bias on q/k/v.
    pub attention_bias: bool,
    /// Mistral's sliding-window attention span, if any.
    pub sliding_window: Option<usize>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
}

#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: usize,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    sliding_window: Option<Value>,
    use_sliding_window: Option<bool>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<Value>,
}

fn ids(v: &Option<Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => vec![],
    }
}

fn parse_rope(obj: &Value, path: &Path) -> Result<(Option<f64>, Option<Llama3Scaling>)> {
    let theta = obj.get("rope_theta").and_then(|v| v.as_f64());
    let kind = obj
        .get("rope_type")
        .or_else(|| obj.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    match kind {
        "default" => Ok((theta, None)),
        "llama3" => {
            let f = |k: &str| {
                obj.get(k).and_then(|v| v.as_f64()).ok_or_else(|| {
                    ReftError::format(path, format!("llama3 rope scaling lacks `{k}`"))
                })
            };
            Ok((
                theta,
                Some(Llama3Scaling {
                    factor: f("factor")?,
                    low_freq_factor: f("low_freq_factor")?,
                    high_freq_factor: f("high_freq_factor")?,
                    original_max_position_embeddings: f("original_max_position_embeddings")?,
                }),
            ))
        }
        other => Err(ReftError::UnsupportedModel(format!(
            "rope scaling type `{other}` in {} (supported: default, llama3)",
            path.display()
        ))),
    }
}

impl DecoderConfig {
    /// Parses an HF `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ReftError::io(path, e))?;
        Self::from_hf_bytes(&bytes, path)
    }

    /// Parses the bytes of an HF `config.json`; `path` only names it in errors.
    pub fn from_hf_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let raw: HfConfig = serde_json::from_slice(bytes)
            .map_err(|e| ReftError::format(path, format!("not a decoder config.json: {e}")))?;
        let model_type = raw.model_type.clone().unwrap_or_default();
        let arch_name = raw.architectures.as_ref().and_then(|a| a.first().cloned()).unwrap_or_default();
        let architecture = match model_type.as_str() {
            "llama" => Architecture::Llama,
            "mistral" => Architecture::Mistral,
            "qwen2" => Architecture::Qwen2,
            _ => {
                return Err(ReftError::UnsupportedModel(format!(
                    "model_type `{model_type}` ({arch_name}) in {}; supported: llama, mistral, qwen2",
                    path.display()
                )))
            }
        };
        // Newer transformers nest rope settings in `rope_parameters`; older ones use top-level
        // `rope_theta` plus an optional `rope_scaling` object.
        let (mut theta, mut scaling) = (raw.rope_theta, None);
        if let Some(p) = &raw.rope_parameters {
            let (t, s) = parse_rope(p, path)?;
            theta = t.or(theta);
            scaling = s;
        }
        if let Some(s) = &raw.rope_scaling {
            if !s.is_null() {
                scaling = parse_rope(s, path)?.1.or(scaling);
            }
        }
        let sliding_window = match (&raw.sliding_window, raw.use_sliding_window) {
            (_, Some(false)) => None,
            (Some(Value::Number(n)), _) => n.as_u64().map(|x| x as usize),
            _ => None,
        };
        let sliding_window = if architecture == Architecture::Qwen2 { None } else { sliding_window };
        let num_heads = raw.num_attention_heads;
        let cfg = DecoderConfig {
            architecture,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(num_heads),
            head_dim: raw.head_dim.unwrap_or(raw.hidden_size / num_heads.max(1)),
            vocab_size: raw.vocab_size,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: theta.unwrap_or(10_000.0),
            rope_scaling: scaling,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(4096),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            attention_bias: raw.attention_bias.unwrap_or(architecture == Architecture::Qwen2),
            sliding_window,
            bos_token_id: ids(&raw.bos_token_id).first().copied(),
            eos_token_ids: ids(&raw.eos_token_id),
            pad_token_id: ids(&raw.pad_token_id).first().copied(),
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |r: String| Err(ReftError::format(path, r));
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.num_heads % self.num_kv_heads != 0 {
            return bad(format!(
                "num_attention_heads {} must be a positive multiple of num_key_value_heads {}",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim % 2 != 0 || self.head_dim == 0 {
            return bad(format!("head_dim {} must be even and positive", self.head_dim));
        }
        if self.num_layers == 0 || self.hidden_size == 0 || self.vocab_size == 0 {
            return bad("num_hidden_layers, hidden_size and vocab_size must be positive".into());
        }
        Ok(())
    }

    /// RoPE inverse frequencies (length `head_dim / 2`), with llama3 scaling applied.
    pub fn inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim as f64;
        let base: Vec<f64> = (0..self.head_dim / 2)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d))
            .collect();
        let Some(s) = &self.rope_scaling else { return base };
        let low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
        let high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
        base.into_iter()
            .map(|f| {
                let wavelen = 2.0 * std::f64::consts::PI / f;
                if wavelen < high_wavelen {
                    f
                } else if wavelen > low_wavelen {
                    f / s.factor
                } else {
                    let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor)
                        / (s.high_freq_factor - s.low_freq_factor);
                    (1.0 - smooth) * f / s.factor + smooth * f
                }
            })
            .collect()
    }
}
