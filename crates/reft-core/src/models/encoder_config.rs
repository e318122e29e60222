//! Configuration of the BERT family of encoders (BERT, RoBERTa, XLM-R), parsed from an HF
//! `config.json` (`models/bert/configuration_bert.py`, `models/roberta/configuration_roberta.py`).
//! The members differ only in how position ids are built and in their classifier head.

use crate::error::{ReftError, Result};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// Which encoder a checkpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderFamily {
    Bert,
    Roberta,
    XlmRoberta,
}

impl EncoderFamily {
    pub fn as_str(&self) -> &'static str {
        match self {
            EncoderFamily::Bert => "bert",
            EncoderFamily::Roberta => "roberta",
            EncoderFamily::XlmRoberta => "xlm-roberta",
        }
    }

    /// RoBERTa and XLM-R count positions from `pad_token_id + 1` and skip padding tokens
    /// (`create_position_ids_from_input_ids`); BERT uses `0..t`.
    pub fn offset_positions(&self) -> bool {
        !matches!(self, EncoderFamily::Bert)
    }
}

/// Encoder hyperparameters.
#[derive(Clone, Debug)]
pub struct EncoderConfig {
    pub family: EncoderFamily,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    /// Classes of a fine-tuned head stored with the checkpoint (`num_labels` / `id2label`).
    pub num_labels: Option<usize>,
}

#[derive(Deserialize)]
struct Raw {
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    vocab_size: usize,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<u32>,
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
    num_labels: Option<usize>,
    id2label: Option<serde_json::Map<String, Value>>,
}

impl EncoderConfig {
    /// Whether an HF `config.json` describes an encoder this module handles.
    pub fn is_encoder_json(v: &Value) -> bool {
        matches!(v.get("model_type").and_then(|m| m.as_str()), Some("bert" | "roberta" | "xlm-roberta"))
    }

    /// Parses an HF `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ReftError::io(path, e))?;
        Self::from_hf_bytes(&bytes, path)
    }

    /// Parses the bytes of an HF `config.json`; `path` only names it in errors.
    pub fn from_hf_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| ReftError::format(path, format!("not an encoder config.json: {e}")))?;
        let family = match raw.model_type.as_deref() {
            Some("bert") => EncoderFamily::Bert,
            Some("roberta") => EncoderFamily::Roberta,
            Some("xlm-roberta") => EncoderFamily::XlmRoberta,
            other => {
                return Err(ReftError::UnsupportedModel(format!(
                    "encoder model_type `{}` in {}; supported: bert, roberta, xlm-roberta",
                    other.unwrap_or(""),
                    path.display()
                )))
            }
        };
        // Only the exact-erf GELU (`gelu`) and absolute positions are implemented; anything else
        // would silently compute different numbers.
        let act = raw.hidden_act.as_deref().unwrap_or("gelu");
        if act != "gelu" {
            return Err(ReftError::UnsupportedModel(format!(
                "hidden_act `{act}` in {} (supported: gelu)",
                path.display()
            )));
        }
        if let Some(p) = raw.position_embedding_type.as_deref() {
            if p != "absolute" {
                return Err(ReftError::UnsupportedModel(format!(
                    "position_embedding_type `{p}` in {} (supported: absolute)",
                    path.display()
                )));
            }
        }
        let num_labels = raw.num_labels.or(raw.id2label.as_ref().map(|m| m.len()));
        let default_pad = if family == EncoderFamily::Bert { 0 } else { 1 };
        let cfg = EncoderConfig {
            family,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            vocab_size: raw.vocab_size,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(512),
            type_vocab_size: raw.type_vocab_size.unwrap_or(2),
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
            pad_token_id: raw.pad_token_id.unwrap_or(default_pad),
            num_labels,
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.num_heads == 0 || self.hidden_size % self.num_heads != 0 {
            return Err(ReftError::format(
                path,
                format!("hidden_size {} must be a multiple of num_attention_heads {}", self.hidden_size, self.num_heads),
            ));
        }
        if self.num_layers == 0 || self.vocab_size == 0 || self.type_vocab_size == 0 {
            return Err(ReftError::format(path, "num_hidden_layers, vocab_size and type_vocab_size must be positive"));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Position ids of one row: `0..t` for BERT; for RoBERTa/XLM-R, HF's
    /// `create_position_ids_from_input_ids`: `pad + cumsum(id != pad)` on non-pad tokens and
    /// `pad` on pad tokens.
    pub fn position_ids(&self, ids: &[u32]) -> Vec<i64> {
        if !self.family.offset_positions() {
            return (0..ids.len() as i64).collect();
        }
        let pad = self.pad_token_id as i64;
        let mut count = 0i64;
        ids.iter()
            .map(|&id| {
                if id as i64 == pad {
                    pad
                } else {
                    count += 1;
                    pad + count
                }
            })
            .collect()
    }
}
