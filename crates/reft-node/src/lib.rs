//! reft-node: the napi-rs binding of reft-core. Translation only — no math here. Classes:
//! [`model::NativeModel`] (frozen base + tokenizer) and [`reft::NativeReft`] (interventions);
//! slow calls are `AsyncTask`s; errors carry a `[ERR_…]` code prefix (see `error.rs`).
#![deny(clippy::all)]

mod alloc;
mod error;
mod model;
mod options;
mod reft;

use error::IntoNapi;
use napi_derive::napi;

/// Where the embedded default model (SmolLM2-135M-Instruct GGUF) is expected.
#[napi]
pub fn default_model_path() -> String {
    reft_core::default_model::default_model_path().to_string_lossy().into_owned()
}

/// Where the MiniLM encoder (all-MiniLM-L6-v2 directory) is expected.
#[napi]
pub fn minilm_path() -> String {
    reft_core::default_model::minilm_path().to_string_lossy().into_owned()
}

/// Writes a tiny random BERT (HF layout, character WordPiece tokenizer) to `dir`; with
/// `numLabels`, a stored classifier too — for tests and docs.
#[napi]
pub fn create_tiny_encoder(dir: String, seed: u32, num_labels: Option<u32>) -> napi::Result<()> {
    error::guard(|| reft_core::testing::write_tiny_encoder(std::path::Path::new(&dir), seed as u64, num_labels.map(|n| n as usize)).napi())
}

/// Writes a tiny random Llama (HF layout, byte-level tokenizer) to `dir` — for tests and docs.
#[napi]
pub fn create_tiny_model(dir: String, seed: u32) -> napi::Result<()> {
    error::guard(|| reft_core::testing::write_tiny_model(std::path::Path::new(&dir), seed as u64).napi())
}
