//! `WasmReft`: a base model with interventions, the counterpart of the napi binding's
//! `NativeReft`. Calls are synchronous (wasm32-unknown-unknown has no threads); the TS backend
//! wraps them in promises. `generate` streams through an optional JS callback, which may call
//! `abort()`; adapters save to and load from in-memory files ([`WasmFiles`]).

use crate::error::{coded, disposed, IntoJs};
use crate::files::WasmFiles;
use crate::options::{parse, GenerateOptionsObject, SpecObject, StepOptionsObject, WasmBatch};
use reft_core::train::StepOptions;
use reft_core::ReftModel;
use serde_json::json;
use std::cell::Cell;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `onToken` of `generate`: receives each step's tokens (one per unfinished row).
    #[wasm_bindgen(typescript_type = "(tokens: Uint32Array) => void")]
    pub type TokenCallback;

    #[wasm_bindgen(method, catch, js_name = call)]
    fn call(this: &TokenCallback, this_arg: &JsValue, tokens: Vec<u32>) -> Result<JsValue, JsValue>;
}

/// `NativeForwardOutput`.
#[wasm_bindgen(getter_with_clone)]
pub struct ForwardOutput {
    /// Row-major values of the tensor described by `dims`; empty when not requested.
    #[wasm_bindgen(readonly)]
    pub logits: Vec<f32>,
    #[wasm_bindgen(readonly)]
    pub dims: Vec<u32>,
    #[wasm_bindgen(readonly)]
    pub loss: Option<f64>,
    #[wasm_bindgen(readonly, js_name = numTokens)]
    pub num_tokens: u32,
}

/// `NativeStepStats`.
#[wasm_bindgen]
pub struct StepStats {
    #[wasm_bindgen(readonly)]
    pub loss: f64,
    #[wasm_bindgen(readonly, js_name = gradNorm)]
    pub grad_norm: f64,
    #[wasm_bindgen(readonly, js_name = numTokens)]
    pub num_tokens: u32,
    #[wasm_bindgen(readonly)]
    pub step: u32,
}

/// New tokens of every row, concatenated: row `i` is `tokens[offsets[i]..offsets[i+1]]`.
#[wasm_bindgen(getter_with_clone)]
pub struct Generated {
    #[wasm_bindgen(readonly)]
    pub tokens: Vec<u32>,
    #[wasm_bindgen(readonly)]
    pub offsets: Vec<u32>,
}

/// A base model with interventions.
#[wasm_bindgen]
pub struct WasmReft {
    inner: Option<ReftModel>,
    aborted: Cell<bool>,
}

impl WasmReft {
    pub(crate) fn wrap(m: ReftModel) -> Self {
        Self { inner: Some(m), aborted: Cell::new(false) }
    }

    fn get(&self) -> Result<&ReftModel, JsError> {
        self.inner.as_ref().ok_or_else(|| disposed("adapter"))
    }

    fn get_mut(&mut self) -> Result<&mut ReftModel, JsError> {
        self.inner.as_mut().ok_or_else(|| disposed("adapter"))
    }
}

#[wasm_bindgen]
impl WasmReft {
    /// Intervention specs in config order (`NativeInterventionSpec[]` as JSON text).
    pub fn specs(&self) -> Result<String, JsError> {
        let specs: Vec<SpecObject> = self.get()?.interventions.iter().map(|iv| iv.spec().into()).collect();
        serde_json::to_string(&specs).map_err(|e| coded("ERR_BACKEND", e))
    }

    pub fn forward(&self, batch: &WasmBatch, want_logits: bool) -> Result<ForwardOutput, JsError> {
        let out = self.get()?.forward(&batch.inner, want_logits).js()?;
        let (logits, dims) = match out.logits {
            Some(t) => {
                let dims = t.dims().iter().map(|&d| d as u32).collect();
                let v = t.flatten_all().and_then(|t| t.to_dtype(candle_core::DType::F32)).and_then(|t| t.to_vec1());
                (v.map_err(|e| coded("ERR_BACKEND", e))?, dims)
            }
            None => (vec![], vec![]),
        };
        Ok(ForwardOutput { logits, dims, loss: out.loss, num_tokens: out.num_tokens as u32 })
    }

    /// Forward + backward on each micro-batch (losses averaged), then clip + AdamW.
    #[wasm_bindgen(js_name = trainStep)]
    pub fn train_step(&mut self, micro_batches: Vec<WasmBatch>, options_json: &str) -> Result<StepStats, JsError> {
        let opts: StepOptions = parse::<StepOptionsObject>("step options", options_json)?.into();
        let batches: Vec<_> = micro_batches.into_iter().map(|b| b.inner).collect();
        let s = self.get_mut()?.train_step(&batches, &opts).js()?;
        Ok(StepStats { loss: s.loss, grad_norm: s.grad_norm, num_tokens: s.num_tokens as u32, step: s.step as u32 })
    }

    /// New tokens per row for left-padded prompts. `onToken` receives each step's tokens and
    /// may call `abort()`, which ends the call with `ERR_ABORTED` after the current token; an
    /// exception thrown by `onToken` is rethrown as is.
    pub fn generate(&self, prompts: &WasmBatch, options_json: &str, on_token: Option<TokenCallback>) -> Result<Generated, JsValue> {
        let opts = parse::<GenerateOptionsObject>("generate options", options_json)?.into();
        self.aborted.set(false);
        let mut thrown: Option<JsValue> = None;
        let rows = self
            .get()?
            .generate(&prompts.inner, &opts, &mut |tokens| {
                if let Some(cb) = &on_token {
                    if let Err(e) = cb.call(&JsValue::NULL, tokens.to_vec()) {
                        thrown = Some(e);
                        return false;
                    }
                }
                !self.aborted.get()
            })
            .js()?;
        if let Some(e) = thrown {
            return Err(e);
        }
        if self.aborted.get() {
            return Err(coded("ERR_ABORTED", "aborted").into());
        }
        let mut offsets = vec![0u32];
        let mut tokens = Vec::new();
        for r in rows {
            tokens.extend(r);
            offsets.push(tokens.len() as u32);
        }
        Ok(Generated { tokens, offsets })
    }

    /// Stops a running `generate` (called from its `onToken`) after the current token.
    pub fn abort(&self) {
        self.aborted.set(true);
    }

    /// Caller-owned JSON stored in the checkpoint (`undefined` when none).
    pub fn metadata(&self) -> Result<Option<String>, JsError> {
        Ok(self.get()?.metadata.as_ref().map(|v| v.to_string()))
    }

    #[wasm_bindgen(js_name = setMetadata)]
    pub fn set_metadata(&mut self, json: &str) -> Result<(), JsError> {
        let v: serde_json::Value = parse("metadata", json)?;
        self.get_mut()?.metadata = Some(v);
        Ok(())
    }

    /// Dropout on (true) or off (false). New adapters start in eval mode.
    #[wasm_bindgen(js_name = setTraining)]
    pub fn set_training(&mut self, training: bool) -> Result<(), JsError> {
        self.get_mut()?.training = training;
        Ok(())
    }

    /// `NativeTrainableParameters` as JSON text.
    #[wasm_bindgen(js_name = trainableParameters)]
    pub fn trainable_parameters(&self) -> Result<String, JsError> {
        let g = self.get()?;
        let head = g.head.as_ref().map(|h| h.num_trainable()).unwrap_or(0);
        Ok(json!({ "interventionParams": g.num_trainable(), "headParams": head, "modelParams": g.base.num_parameters() }).to_string())
    }

    /// `NativeHeadInfo` as JSON text, or `undefined` without a head.
    pub fn head(&self) -> Result<Option<String>, JsError> {
        let g = self.get()?;
        Ok(g.head.as_ref().map(|h| json!({ "numLabels": h.spec.num_labels, "trainDense": h.train_dense }).to_string()))
    }

    /// The checkpoint's files (`reft_config.json`, `interventions.safetensors`, and with
    /// `withOptimizer` after a step `optimizer.safetensors`), byte for byte what the native
    /// `save` writes.
    #[wasm_bindgen(js_name = saveFiles)]
    pub fn save_files(&self, with_optimizer: bool) -> Result<WasmFiles, JsError> {
        Ok(self.get()?.to_files(with_optimizer).js()?.into())
    }

    pub fn dispose(&mut self) {
        self.abort();
        self.inner = None;
    }

    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }
}
