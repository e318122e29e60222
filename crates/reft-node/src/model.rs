//! `NativeModel`: a loaded frozen base model and its tokenizer. Loading runs off the JS
//! thread; the handle is freed by `dispose()` and fails with `ERR_DISPOSED` afterwards.

use crate::error::{coded, disposed, guard, IntoNapi};
use crate::options::LoadOptions;
use napi::bindgen_prelude::{AsyncTask, Uint32Array};
use napi::{Env, Task};
use napi_derive::napi;
use reft_core::models::{load_model as core_load, Backbone, Model};
use std::path::PathBuf;
use std::sync::Arc;

/// Static facts about a base model.
#[napi(object)]
pub struct ModelInfo {
    pub architecture: String,
    /// `decoder` (causal LM: generation) or `encoder` (classification heads).
    pub kind: String,
    /// Classes of a classification head stored in an encoder checkpoint.
    pub num_labels: Option<u32>,
    pub source: String,
    pub num_layers: u32,
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_heads: u32,
    pub num_kv_heads: u32,
    pub vocab_size: u32,
    pub max_position_embeddings: u32,
    pub num_parameters: f64,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    pub chat_template: Option<String>,
}

/// Token ids with their segment ids.
#[napi(object)]
pub struct EncodedPair {
    pub ids: Uint32Array,
    pub type_ids: Uint32Array,
}

/// A frozen base model.
#[napi]
pub struct NativeModel {
    pub(crate) inner: Option<Arc<Model>>,
}

impl NativeModel {
    pub(crate) fn get(&self) -> napi::Result<Arc<Model>> {
        self.inner.clone().ok_or_else(|| disposed("model"))
    }
}

#[napi]
impl NativeModel {
    #[napi]
    pub fn info(&self) -> napi::Result<ModelInfo> {
        let m = self.get()?;
        let chat_template = m.tokenizer.as_ref().and_then(|t| t.chat_template.clone());
        let num_parameters = m.num_parameters() as f64;
        Ok(match &m.backbone {
            Backbone::Decoder(d) => {
                let c = &d.cfg;
                ModelInfo {
                    architecture: c.architecture.as_str().into(),
                    kind: "decoder".into(),
                    num_labels: None,
                    source: m.source.into(),
                    num_layers: c.num_layers as u32,
                    hidden_size: c.hidden_size as u32,
                    intermediate_size: c.intermediate_size as u32,
                    num_heads: c.num_heads as u32,
                    num_kv_heads: c.num_kv_heads as u32,
                    vocab_size: c.vocab_size as u32,
                    max_position_embeddings: c.max_position_embeddings as u32,
                    num_parameters,
                    bos_token_id: c.bos_token_id,
                    eos_token_ids: c.eos_token_ids.clone(),
                    pad_token_id: c.pad_token_id,
                    chat_template,
                }
            }
            Backbone::Encoder(e) => {
                let c = &e.cfg;
                ModelInfo {
                    architecture: c.family.as_str().into(),
                    kind: "encoder".into(),
                    num_labels: c.num_labels.map(|n| n as u32),
                    source: m.source.into(),
                    num_layers: c.num_layers as u32,
                    hidden_size: c.hidden_size as u32,
                    intermediate_size: c.intermediate_size as u32,
                    num_heads: c.num_heads as u32,
                    num_kv_heads: c.num_heads as u32,
                    vocab_size: c.vocab_size as u32,
                    max_position_embeddings: c.max_position_embeddings as u32,
                    num_parameters,
                    bos_token_id: None,
                    eos_token_ids: vec![],
                    pad_token_id: Some(c.pad_token_id),
                    chat_template,
                }
            }
        })
    }

    /// Token ids of `text`.
    #[napi]
    pub fn encode(&self, text: String, add_special_tokens: bool) -> napi::Result<Uint32Array> {
        let m = self.get()?;
        let tok = m.tokenizer.as_ref().ok_or_else(|| coded("ERR_UNSUPPORTED_MODEL", "this model has no tokenizer"))?;
        Ok(Uint32Array::new(tok.encode(&text, add_special_tokens).napi()?))
    }

    /// Token ids and segment ids of a text or text pair, truncated longest-first to
    /// `maxLength` tokens when given (transformers' `truncation=True`).
    #[napi]
    pub fn encode_pair(&self, text: String, pair: Option<String>, add_special_tokens: bool, max_length: Option<u32>) -> napi::Result<EncodedPair> {
        let m = self.get()?;
        let tok = m.tokenizer.as_ref().ok_or_else(|| coded("ERR_UNSUPPORTED_MODEL", "this model has no tokenizer"))?;
        let e = tok.encode_pair(&text, pair.as_deref(), add_special_tokens, max_length.map(|n| n as usize)).napi()?;
        Ok(EncodedPair { ids: Uint32Array::new(e.ids), type_ids: Uint32Array::new(e.type_ids) })
    }

    /// Text of token ids.
    #[napi]
    pub fn decode(&self, ids: Uint32Array, skip_special_tokens: bool) -> napi::Result<String> {
        let m = self.get()?;
        let tok = m.tokenizer.as_ref().ok_or_else(|| coded("ERR_UNSUPPORTED_MODEL", "this model has no tokenizer"))?;
        tok.decode(&ids.to_vec(), skip_special_tokens).napi()
    }

    /// Id of an exact token string, if it is in the vocabulary.
    #[napi]
    pub fn token_to_id(&self, token: String) -> napi::Result<Option<u32>> {
        Ok(self.get()?.tokenizer.as_ref().and_then(|t| t.token_to_id(&token)))
    }

    /// Frees the model (once no adapter uses it any more).
    #[napi]
    pub fn dispose(&mut self) {
        self.inner = None;
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }
}

pub struct LoadModelTask {
    path: PathBuf,
    opts: reft_core::models::LoadOptions,
}

impl Task for LoadModelTask {
    type Output = Arc<Model>;
    type JsValue = NativeModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(|| core_load(&self.path, &self.opts).map(Arc::new).napi())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(NativeModel { inner: Some(output) })
    }
}

fn parse_load_options(o: Option<LoadOptions>) -> napi::Result<reft_core::models::LoadOptions> {
    let mut out = reft_core::models::LoadOptions::default();
    let Some(o) = o else { return Ok(out) };
    match o.device.as_deref() {
        None | Some("cpu") => {}
        Some("cuda") => {
            out.device = candle_device_cuda()?;
        }
        Some(d) => return Err(coded("ERR_INVALID_CONFIG", format!("invalid config: device: `{d}` (cpu or cuda)"))),
    }
    out.dtype = match o.dtype.as_deref() {
        None | Some("f32") => reft_core::models::DType::F32,
        Some("bf16") => reft_core::models::DType::BF16,
        Some("f16") => reft_core::models::DType::F16,
        Some(d) => return Err(coded("ERR_INVALID_CONFIG", format!("invalid config: dtype: `{d}` (f32, bf16 or f16)"))),
    };
    Ok(out)
}

fn candle_device_cuda() -> napi::Result<reft_core::models::Device> {
    reft_core::cuda_device::new_cuda_device(0)
        .map_err(|e| coded("ERR_BACKEND", format!("CUDA is not available in this build or on this machine: {e}")))
}

/// Loads an HF model directory or a `.gguf` file (off the JS thread).
#[napi]
pub fn load_model(path: String, options: Option<LoadOptions>) -> napi::Result<AsyncTask<LoadModelTask>> {
    let opts = parse_load_options(options)?;
    Ok(AsyncTask::new(LoadModelTask { path: PathBuf::from(path), opts }))
}
