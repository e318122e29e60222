//! Base models we own. [`Model`] bundles a frozen backbone — a Llama-family [`Decoder`] or a
//! BERT-family [`Encoder`] — with its tokenizer and where it came from; `load_model` picks the
//! loader from the path (HF directory or `.gguf` file) and the directory's `config.json`;
//! `load_model_from_files` does the same for in-memory files (WebAssembly, no file system).

pub mod bert;
pub mod config;
pub mod encoder_config;
pub mod gguf;
pub mod hf;
pub mod hf_encoder;
pub mod hooks;
pub mod kv_cache;
pub mod llama;
mod llama_block;
mod mask;
pub mod packed;

use crate::error::{ReftError, Result};
use crate::files::FileMap;
use crate::tokenizer::Tok;
pub use candle_core::{DType, Device};
use std::path::Path;

pub use config::{Architecture, DecoderConfig};
pub use bert::{Encoder, EncoderInput};
pub use encoder_config::{EncoderConfig, EncoderFamily};
pub use hooks::{gather_rows, Edited, Hooks, NoHooks, RowEdit};
pub use llama::{Component, Decoder, ForwardInput, KvCache, Prepared};

/// The frozen network of a [`Model`].
pub enum Backbone {
    /// A causal language model (generation, LM loss).
    Decoder(Decoder),
    /// A bidirectional encoder (classification and regression heads).
    Encoder(Encoder),
}

/// A frozen base model and its tokenizer.
pub struct Model {
    pub backbone: Backbone,
    /// `None` for an HF directory without `tokenizer.json` (token ids still work).
    pub tokenizer: Option<Tok>,
    /// "gguf" or "hf".
    pub source: &'static str,
}

/// Loading options.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, device: Device::Cpu }
    }
}

/// Loads an HF model directory or a `.gguf` file.
pub fn load_model(path: &Path, opts: &LoadOptions) -> Result<Model> {
    let model = load_model_queued(path, opts)?;
    // On CUDA the uploads and casts were queued on this thread's stream, which the thread that
    // uses the model next does not wait for (`cuda_device.rs`).
    opts.device.synchronize()?;
    Ok(model)
}

fn load_model_queued(path: &Path, opts: &LoadOptions) -> Result<Model> {
    crate::threads::pin_thread_count();
    if !path.exists() {
        return Err(ReftError::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    if path.is_dir() {
        let backbone = if is_encoder_dir(path)? {
            Backbone::Encoder(hf_encoder::load_encoder(path, opts.dtype, &opts.device)?)
        } else {
            Backbone::Decoder(hf::load_decoder(path, opts.dtype, &opts.device)?)
        };
        let tokenizer = if path.join("tokenizer.json").exists() { Some(Tok::from_dir(path)?) } else { None };
        return Ok(Model { backbone, tokenizer, source: "hf" });
    }
    let is_gguf = path.extension().map(|e| e.eq_ignore_ascii_case("gguf")).unwrap_or(false);
    if !is_gguf {
        return Err(ReftError::UnsupportedModel(format!(
            "{}: expected an HF model directory or a .gguf file",
            path.display()
        )));
    }
    let mut g = gguf::GgufFile::open(path)?;
    let decoder = gguf::load_decoder(&mut g, opts.dtype, &opts.device)?;
    let tokenizer = Some(Tok::from_gguf(&g, path)?);
    Ok(Model { backbone: Backbone::Decoder(decoder), tokenizer, source: "gguf" })
}

/// Loads a model from in-memory files, named as in an HF directory (`config.json`,
/// `model.safetensors` or `model.safetensors.index.json` and its shards, optionally
/// `tokenizer.json` and `tokenizer_config.json`) or a single `*.gguf` file.
pub fn load_model_from_files(files: &FileMap, opts: &LoadOptions) -> Result<Model> {
    let model = load_model_from_files_queued(files, opts)?;
    opts.device.synchronize()?; // as in `load_model`
    Ok(model)
}

fn load_model_from_files_queued(files: &FileMap, opts: &LoadOptions) -> Result<Model> {
    crate::threads::pin_thread_count();
    let gguf: Vec<&str> = files.names().filter(|n| n.to_ascii_lowercase().ends_with(".gguf")).collect();
    if let [name] = gguf[..] {
        let path = FileMap::path(name);
        let mut g = gguf::GgufFile::from_bytes(files.require(name)?, &path)?;
        let decoder = gguf::load_decoder(&mut g, opts.dtype, &opts.device)?;
        let tokenizer = Some(Tok::from_gguf(&g, &path)?);
        return Ok(Model { backbone: Backbone::Decoder(decoder), tokenizer, source: "gguf" });
    }
    if gguf.len() > 1 {
        return Err(ReftError::UnsupportedModel(format!("{} .gguf files given; expected one", gguf.len())));
    }
    let config = files.require("config.json")?;
    let backbone = if is_encoder_config(config, &FileMap::path("config.json"))? {
        Backbone::Encoder(hf_encoder::load_encoder_from_files(files, opts.dtype, &opts.device)?)
    } else {
        Backbone::Decoder(hf::load_decoder_from_files(files, opts.dtype, &opts.device)?)
    };
    let tokenizer = match files.get("tokenizer.json") {
        Some(json) => Some(Tok::from_bytes(json, files.get("tokenizer_config.json"), &FileMap::path("tokenizer.json"))?),
        None => None,
    };
    Ok(Model { backbone, tokenizer, source: "hf" })
}

/// Whether the directory's `config.json` names an encoder `model_type`.
fn is_encoder_dir(dir: &Path) -> Result<bool> {
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| ReftError::io(&path, e))?;
    is_encoder_config(&bytes, &path)
}

fn is_encoder_config(bytes: &[u8], path: &Path) -> Result<bool> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ReftError::format(path, format!("invalid JSON: {e}")))?;
    Ok(EncoderConfig::is_encoder_json(&v))
}

impl Model {
    /// The decoder, or `ERR_UNSUPPORTED_MODEL` for an encoder (generation, LM loss).
    pub fn decoder(&self) -> Result<&Decoder> {
        match &self.backbone {
            Backbone::Decoder(d) => Ok(d),
            Backbone::Encoder(e) => Err(ReftError::UnsupportedModel(format!(
                "{} is an encoder: it has no language-model head (use a classification head instead)",
                e.cfg.family.as_str()
            ))),
        }
    }

    /// The encoder, if this is one.
    pub fn encoder(&self) -> Option<&Encoder> {
        match &self.backbone {
            Backbone::Encoder(e) => Some(e),
            Backbone::Decoder(_) => None,
        }
    }

    pub fn hidden_size(&self) -> usize {
        match &self.backbone {
            Backbone::Decoder(d) => d.cfg.hidden_size,
            Backbone::Encoder(e) => e.cfg.hidden_size,
        }
    }

    pub fn num_layers(&self) -> usize {
        match &self.backbone {
            Backbone::Decoder(d) => d.cfg.num_layers,
            Backbone::Encoder(e) => e.cfg.num_layers,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match &self.backbone {
            Backbone::Decoder(d) => d.cfg.vocab_size,
            Backbone::Encoder(e) => e.cfg.vocab_size,
        }
    }

    pub fn device(&self) -> &Device {
        match &self.backbone {
            Backbone::Decoder(d) => &d.device,
            Backbone::Encoder(e) => &e.device,
        }
    }

    pub fn dtype(&self) -> DType {
        match &self.backbone {
            Backbone::Decoder(d) => d.dtype,
            Backbone::Encoder(e) => e.dtype,
        }
    }

    /// Parameters of the frozen model (pyreft's "model params").
    pub fn num_parameters(&self) -> usize {
        match &self.backbone {
            Backbone::Decoder(d) => d.num_parameters(),
            Backbone::Encoder(e) => e.num_parameters(),
        }
    }

    /// `llama`, `mistral`, `qwen2`, `bert`, `roberta` or `xlm-roberta`.
    pub fn architecture(&self) -> &'static str {
        match &self.backbone {
            Backbone::Decoder(d) => d.cfg.architecture.as_str(),
            Backbone::Encoder(e) => e.cfg.family.as_str(),
        }
    }
}
