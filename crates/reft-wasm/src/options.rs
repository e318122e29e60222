//! Option objects crossing the boundary and their conversion into core types. Small option
//! objects arrive as JSON text in the napi binding's camelCase shapes (`src/wasm/backend.ts`
//! stringifies them); bulk data (token ids, labels, positions) arrives as typed arrays in a
//! [`WasmBatch`].

use crate::error::{coded, IntoJs};
use reft_core::generate::GenerateOptions;
use reft_core::head::HeadSpec;
use reft_core::interventions::InterventionSpec;
use reft_core::models::{DType, LoadOptions};
use reft_core::train::StepOptions;
use reft_core::Batch;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// Parses one JSON option object, naming `what` in the error.
pub fn parse<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| coded("ERR_INVALID_CONFIG", format!("invalid config: {what}: {e}")))
}

/// `NativeLoadOptions`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadOptionsObject {
    pub device: Option<String>,
    pub dtype: Option<String>,
}

impl TryFrom<LoadOptionsObject> for LoadOptions {
    type Error = JsError;
    fn try_from(o: LoadOptionsObject) -> Result<Self, JsError> {
        match o.device.as_deref() {
            None | Some("cpu") => {}
            Some(d) => return Err(coded("ERR_INVALID_CONFIG", format!("invalid config: device: `{d}` (WebAssembly runs on the CPU only)"))),
        }
        let dtype = match o.dtype.as_deref() {
            None | Some("f32") => DType::F32,
            Some("bf16") => DType::BF16,
            Some("f16") => DType::F16,
            Some(d) => return Err(coded("ERR_INVALID_CONFIG", format!("invalid config: dtype: `{d}` (f32, bf16 or f16)"))),
        };
        Ok(LoadOptions { dtype, ..Default::default() })
    }
}

/// `NativeInterventionSpec`.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecObject {
    pub kind: String,
    pub layer: usize,
    pub component: Option<String>,
    pub rank: usize,
    pub dropout: Option<f64>,
    pub activation: Option<String>,
    pub add_bias: Option<bool>,
}

impl TryFrom<&SpecObject> for InterventionSpec {
    type Error = JsError;
    fn try_from(o: &SpecObject) -> Result<Self, JsError> {
        InterventionSpec::from_fields(&o.kind, o.layer, o.component.as_deref(), o.rank, o.dropout, o.activation.as_deref(), o.add_bias).js()
    }
}

impl From<&InterventionSpec> for SpecObject {
    fn from(s: &InterventionSpec) -> Self {
        Self {
            kind: s.kind.as_str().into(),
            layer: s.layer,
            component: Some(s.component.as_str().into()),
            rank: s.rank,
            dropout: Some(s.dropout),
            activation: Some(s.activation_name()),
            add_bias: Some(s.add_bias),
        }
    }
}

/// `NativeHeadSpec`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeadObject {
    pub num_labels: usize,
    pub train_dense: Option<bool>,
}

impl From<HeadObject> for HeadSpec {
    fn from(h: HeadObject) -> Self {
        HeadSpec { num_labels: h.num_labels, train_dense: h.train_dense }
    }
}

/// `NativeStepOptions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepOptionsObject {
    pub lr: f64,
    pub weight_decay: Option<f64>,
    pub max_grad_norm: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub recompute: Option<bool>,
}

impl From<StepOptionsObject> for StepOptions {
    fn from(o: StepOptionsObject) -> Self {
        let d = StepOptions::default();
        StepOptions {
            lr: o.lr,
            weight_decay: o.weight_decay.unwrap_or(d.weight_decay),
            max_grad_norm: o.max_grad_norm.unwrap_or(d.max_grad_norm),
            beta1: o.beta1.unwrap_or(d.beta1),
            beta2: o.beta2.unwrap_or(d.beta2),
            eps: o.eps.unwrap_or(d.eps),
            recompute: o.recompute.unwrap_or(d.recompute),
        }
    }
}

/// `NativeGenerateOptions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateOptionsObject {
    pub max_new_tokens: usize,
    pub greedy: Option<bool>,
    pub temperature: Option<f64>,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub stop_token_ids: Option<Vec<u32>>,
    pub use_cache: Option<bool>,
}

impl From<GenerateOptionsObject> for GenerateOptions {
    fn from(o: GenerateOptionsObject) -> Self {
        let d = GenerateOptions::default();
        GenerateOptions {
            max_new_tokens: o.max_new_tokens,
            greedy: o.greedy.unwrap_or(true),
            temperature: o.temperature.unwrap_or(d.temperature),
            top_k: o.top_k.unwrap_or(0),
            top_p: o.top_p.unwrap_or(d.top_p),
            seed: o.seed.unwrap_or(0),
            stop_tokens: o.stop_token_ids.unwrap_or_default(),
            use_cache: o.use_cache.unwrap_or(true),
        }
    }
}

/// A batch (the layout of `NativeBatch` in src/native-api.ts), built once per call in JS.
#[wasm_bindgen]
pub struct WasmBatch {
    pub(crate) inner: Batch,
}

#[wasm_bindgen]
impl WasmBatch {
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(constructor)]
    pub fn new(
        input_ids: Vec<u32>,
        batch_size: u32,
        seq_len: u32,
        attention_mask: Option<Vec<u8>>,
        positions: Option<Vec<i32>>,
        num_positions: Option<u32>,
        labels: Option<Vec<i32>>,
        token_type_ids: Option<Vec<u32>>,
        class_labels: Option<Vec<f32>>,
    ) -> WasmBatch {
        let widen = |v: Vec<i32>| v.into_iter().map(i64::from).collect();
        WasmBatch {
            inner: Batch {
                input_ids,
                batch_size: batch_size as usize,
                seq_len: seq_len as usize,
                attention_mask,
                positions: positions.map(widen),
                num_positions: num_positions.unwrap_or(0) as usize,
                labels: labels.map(widen),
                token_type_ids,
                class_labels,
            },
        }
    }
}
