//! reft-wasm: the wasm-bindgen binding of reft-core for `wasm32-unknown-unknown` (built by
//! scripts/build-wasm.sh, loaded by `src/wasm/`). Translation only — no math here. It mirrors
//! the napi binding's names: [`model::WasmModel`] (frozen base + tokenizer),
//! [`reft::WasmReft`] (interventions), `loadModel`, `createReft`, `loadReft`. Where napi takes
//! paths this takes in-memory files ([`files::WasmFiles`]); small option objects travel as JSON
//! text, bulk data as typed arrays. Errors carry the same `[ERR_…]` message prefix.
//!
//! The crate also compiles natively (nothing loads it there), so the workspace build
//! type-checks it without the WebAssembly toolchain.

mod error;
mod files;
mod model;
mod options;
mod reft;

pub use files::WasmFiles;
pub use model::WasmModel;
pub use options::WasmBatch;
pub use reft::WasmReft;

use error::IntoJs;
use options::{parse, HeadObject, LoadOptionsObject, SpecObject};
use reft_core::interventions::InterventionSpec;
use reft_core::ReftModel;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(msg: &str);
}

/// Runs when the module is instantiated: panics (which abort a WebAssembly instance) print their
/// message before the trap, so the JS `RuntimeError` has an explanation beside it.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| console_error(&format!("reft-wasm panicked: {info}"))));
}

/// Loads a model from in-memory files: an HF directory's (`config.json`, `model.safetensors`
/// or an index and its shards, `tokenizer.json`, `tokenizer_config.json`) or one `*.gguf`.
/// `options` is `NativeLoadOptions` as JSON text. The files are consumed (freed after loading).
#[wasm_bindgen(js_name = loadModel)]
pub fn load_model(files: WasmFiles, options_json: Option<String>) -> Result<WasmModel, JsError> {
    let opts: LoadOptionsObject = match options_json {
        Some(j) => parse("load options", &j)?,
        None => LoadOptionsObject::default(),
    };
    let model = reft_core::models::load_model_from_files(&files.inner, &opts.try_into()?).js()?;
    Ok(WasmModel { inner: Some(Arc::new(model)) })
}

/// Fresh interventions on `model` (initialised from `seed`); `specs` is
/// `NativeInterventionSpec[]` and `head` (encoders only) `NativeHeadSpec`, as JSON text.
#[wasm_bindgen(js_name = createReft)]
pub fn create_reft(model: &WasmModel, specs_json: &str, seed: u32, head_json: Option<String>) -> Result<WasmReft, JsError> {
    let base = model.get()?;
    let objects: Vec<SpecObject> = parse("interventions", specs_json)?;
    let specs = objects.iter().map(InterventionSpec::try_from).collect::<Result<Vec<_>, _>>()?;
    let head = match head_json {
        Some(j) => Some(parse::<HeadObject>("head", &j)?.into()),
        None => None,
    };
    Ok(WasmReft::wrap(ReftModel::with_head(base, &specs, head, seed as u64).js()?))
}

/// Loads one of our checkpoints from its files (what `saveFiles` returns, or the files of a
/// checkpoint directory written by the native `save`) onto `model`; or, when there is no
/// `reft_config.json` and the files are a pyreft adapter's (`config.json` and `intkey_*.bin`),
/// that adapter, as the native `loadReft` does (`with_optimizer` does not apply: pyreft saves no
/// optimizer state).
#[wasm_bindgen(js_name = loadReft)]
pub fn load_reft(model: &WasmModel, files: &WasmFiles, with_optimizer: bool) -> Result<WasmReft, JsError> {
    let m = if !files.inner.contains("reft_config.json") && reft_core::pyreft_import::is_pyreft_files(&files.inner) {
        reft_core::pyreft_import::load_pyreft_files(model.get()?, &files.inner)
    } else {
        ReftModel::from_files(model.get()?, &files.inner, with_optimizer)
    };
    Ok(WasmReft::wrap(m.js()?))
}

/// The files of a tiny random Llama (HF layout, byte-level tokenizer), as `createTinyModel`
/// writes them natively — for tests and docs.
#[wasm_bindgen(js_name = tinyModelFiles)]
pub fn tiny_model_files(seed: u32) -> Result<WasmFiles, JsError> {
    Ok(reft_core::testing::tiny_model_files(seed as u64).js()?.into())
}

/// The files of a tiny random BERT (with `numLabels`, a stored classifier too).
#[wasm_bindgen(js_name = tinyEncoderFiles)]
pub fn tiny_encoder_files(seed: u32, num_labels: Option<u32>) -> Result<WasmFiles, JsError> {
    Ok(reft_core::testing::tiny_encoder_files(seed as u64, num_labels.map(|n| n as usize)).js()?.into())
}
