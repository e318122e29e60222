//! Loading a BERT-family encoder from an HF directory. Weight names follow transformers'
//! `BertModel`/`RobertaModel` state dicts, bare (sentence-transformers layouts such as
//! all-MiniLM-L6-v2) or under the `bert.` / `roberta.` prefix of the `*ForSequenceClassification`
//! and `*ForMaskedLM` checkpoints; a stored `classifier` is kept to initialise the head. The
//! same files can come from memory (a [`FileMap`]).

use super::bert::{Encoder, EncoderLayer, Norm, StoredHead};
use super::encoder_config::EncoderConfig;
use super::hf::{check_shape, Weights};
use crate::error::{ReftError, Result};
use crate::files::FileMap;
use candle_core::{DType, Device};
use std::path::Path;

/// Loads the encoder of an HF directory whose `config.json` has an encoder `model_type`.
pub fn load_encoder(dir: &Path, dtype: DType, device: &Device) -> Result<Encoder> {
    let cfg = EncoderConfig::from_hf_json(&dir.join("config.json"))?;
    build_encoder(cfg, &Weights::open(dir, dtype, device)?)
}

/// Loads the encoder of in-memory HF files (`config.json` and the safetensors).
pub fn load_encoder_from_files(files: &FileMap, dtype: DType, device: &Device) -> Result<Encoder> {
    let cfg = EncoderConfig::from_hf_bytes(files.require("config.json")?, &FileMap::path("config.json"))?;
    build_encoder(cfg, &Weights::from_files(files, dtype, device)?)
}

fn build_encoder(cfg: EncoderConfig, w: &Weights<'_>) -> Result<Encoder> {
    let (dir, dtype, device) = (&w.dir, w.dtype, &w.device);
    let prefix = ["", "bert.", "roberta.", "model."]
        .into_iter()
        .find(|p| w.has(&format!("{p}embeddings.word_embeddings.weight")))
        .ok_or_else(|| ReftError::format(dir, "no `embeddings.word_embeddings.weight` (with or without a bert./roberta. prefix)"))?;
    let norm = |p: &str| -> Result<Norm> {
        Ok(Norm { weight: w.get(&format!("{p}.LayerNorm.weight"))?, bias: w.get(&format!("{p}.LayerNorm.bias"))? })
    };
    let e = format!("{prefix}embeddings");
    let word = w.get(&format!("{e}.word_embeddings.weight"))?;
    check_shape(&word, &[cfg.vocab_size, cfg.hidden_size], "word_embeddings", dir)?;
    let position = w.get(&format!("{e}.position_embeddings.weight"))?;
    check_shape(&position, &[cfg.max_position_embeddings, cfg.hidden_size], "position_embeddings", dir)?;
    let token_type = w.get(&format!("{e}.token_type_embeddings.weight"))?;
    check_shape(&token_type, &[cfg.type_vocab_size, cfg.hidden_size], "token_type_embeddings", dir)?;
    let embed_norm = norm(&e)?;
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for l in 0..cfg.num_layers {
        let p = format!("{prefix}encoder.layer.{l}");
        layers.push(EncoderLayer {
            q: w.linear(&format!("{p}.attention.self.query"), true)?,
            k: w.linear(&format!("{p}.attention.self.key"), true)?,
            v: w.linear(&format!("{p}.attention.self.value"), true)?,
            o: w.linear(&format!("{p}.attention.output.dense"), true)?,
            attn_norm: norm(&format!("{p}.attention.output"))?,
            up: w.linear(&format!("{p}.intermediate.dense"), true)?,
            down: w.linear(&format!("{p}.output.dense"), true)?,
            out_norm: norm(&format!("{p}.output"))?,
        });
    }
    let pooler = if w.has(&format!("{prefix}pooler.dense.weight")) {
        Some(w.linear(&format!("{prefix}pooler.dense"), true)?)
    } else {
        None
    };
    let pair = |p: &str| -> Result<(candle_core::Tensor, candle_core::Tensor)> {
        Ok((w.get(&format!("{p}.weight"))?, w.get(&format!("{p}.bias"))?))
    };
    let stored_head = if w.has("classifier.out_proj.weight") {
        Some(StoredHead { dense: Some(pair("classifier.dense")?), out: pair("classifier.out_proj")? })
    } else if w.has("classifier.weight") {
        Some(StoredHead { dense: None, out: pair("classifier")? })
    } else {
        None
    };
    Ok(Encoder { cfg, word, position, token_type, embed_norm, layers, pooler, stored_head, device: device.clone(), dtype })
}
