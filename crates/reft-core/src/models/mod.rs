//! Base models we own. [`Model`] bundles a frozen [`Decoder`] with its tokenizer and where it
//! came from; `load_model` picks the loader from the path (HF directory or `.gguf` file).

pub mod config;
pub mod gguf;
pub mod hf;
pub mod llama;

use crate::error::{ReftError, Result};
use crate::tokenizer::Tok;
pub use candle_core::{DType, Device};
use std::path::Path;

pub use config::{Architecture, DecoderConfig};
pub use llama::{Component, Decoder, ForwardInput, Hooks, KvCache, NoHooks};

/// A frozen base model and its tokenizer.
pub struct Model {
    pub decoder: Decoder,
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
    if !path.exists() {
        return Err(ReftError::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    if path.is_dir() {
        let decoder = hf::load_decoder(path, opts.dtype, &opts.device)?;
        let tokenizer = if path.join("tokenizer.json").exists() { Some(Tok::from_dir(path)?) } else { None };
        return Ok(Model { decoder, tokenizer, source: "hf" });
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
    Ok(Model { decoder, tokenizer, source: "gguf" })
}
