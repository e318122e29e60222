//! `WasmModel`: a loaded frozen base model and its tokenizer, the counterpart of the napi
//! binding's `NativeModel`. `dispose()` frees it (adapters created from it keep their share).

use crate::error::{coded, disposed, IntoJs};
use reft_core::models::{Backbone, Model};
use reft_core::tokenizer::Tok;
use serde_json::json;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// Token ids with their segment ids.
#[wasm_bindgen(getter_with_clone)]
pub struct EncodedPair {
    #[wasm_bindgen(readonly)]
    pub ids: Vec<u32>,
    #[wasm_bindgen(readonly, js_name = typeIds)]
    pub type_ids: Vec<u32>,
}

/// A frozen base model.
#[wasm_bindgen]
pub struct WasmModel {
    pub(crate) inner: Option<Arc<Model>>,
}

impl WasmModel {
    pub(crate) fn get(&self) -> Result<Arc<Model>, JsError> {
        self.inner.clone().ok_or_else(|| disposed("model"))
    }

    /// Runs `f` on the tokenizer, or fails with `ERR_UNSUPPORTED_MODEL` when there is none.
    fn with_tok<T>(&self, f: impl FnOnce(&Tok) -> Result<T, JsError>) -> Result<T, JsError> {
        let m = self.get()?;
        let tok = m.tokenizer.as_ref().ok_or_else(|| coded("ERR_UNSUPPORTED_MODEL", "this model has no tokenizer"))?;
        f(tok)
    }
}

#[wasm_bindgen]
impl WasmModel {
    /// `NativeModelInfo` as JSON text.
    pub fn info(&self) -> Result<String, JsError> {
        let m = self.get()?;
        let chat_template = m.tokenizer.as_ref().and_then(|t| t.chat_template.clone());
        let common = json!({ "source": m.source, "numParameters": m.num_parameters(), "chatTemplate": chat_template });
        let mut v = match &m.backbone {
            Backbone::Decoder(d) => {
                let c = &d.cfg;
                json!({
                    "architecture": c.architecture.as_str(), "kind": "decoder",
                    "numLayers": c.num_layers, "hiddenSize": c.hidden_size,
                    "intermediateSize": c.intermediate_size, "numHeads": c.num_heads,
                    "numKvHeads": c.num_kv_heads, "vocabSize": c.vocab_size,
                    "maxPositionEmbeddings": c.max_position_embeddings,
                    "bosTokenId": c.bos_token_id, "eosTokenIds": c.eos_token_ids, "padTokenId": c.pad_token_id,
                })
            }
            Backbone::Encoder(e) => {
                let c = &e.cfg;
                json!({
                    "architecture": c.family.as_str(), "kind": "encoder", "numLabels": c.num_labels,
                    "numLayers": c.num_layers, "hiddenSize": c.hidden_size,
                    "intermediateSize": c.intermediate_size, "numHeads": c.num_heads,
                    "numKvHeads": c.num_heads, "vocabSize": c.vocab_size,
                    "maxPositionEmbeddings": c.max_position_embeddings,
                    "eosTokenIds": [], "padTokenId": c.pad_token_id,
                })
            }
        };
        if let (Some(obj), Some(extra)) = (v.as_object_mut(), common.as_object()) {
            obj.extend(extra.clone());
            // Absent, not null, as napi leaves `undefined` optionals out.
            obj.retain(|_, x| !x.is_null());
        }
        Ok(v.to_string())
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, JsError> {
        self.with_tok(|t| t.encode(text, add_special_tokens).js())
    }

    /// Token ids and segment ids of a text or text pair, truncated longest-first to
    /// `maxLength` tokens when given.
    #[wasm_bindgen(js_name = encodePair)]
    pub fn encode_pair(&self, text: &str, pair: Option<String>, add_special_tokens: bool, max_length: Option<u32>) -> Result<EncodedPair, JsError> {
        let e = self.with_tok(|t| t.encode_pair(text, pair.as_deref(), add_special_tokens, max_length.map(|n| n as usize)).js())?;
        Ok(EncodedPair { ids: e.ids, type_ids: e.type_ids })
    }

    /// Text of token ids.
    pub fn decode(&self, ids: Vec<u32>, skip_special_tokens: bool) -> Result<String, JsError> {
        self.with_tok(|t| t.decode(&ids, skip_special_tokens).js())
    }

    /// Id of an exact token string, if it is in the vocabulary.
    #[wasm_bindgen(js_name = tokenToId)]
    pub fn token_to_id(&self, token: &str) -> Result<Option<u32>, JsError> {
        Ok(self.get()?.tokenizer.as_ref().and_then(|t| t.token_to_id(token)))
    }

    /// Frees the model (once no adapter uses it any more).
    pub fn dispose(&mut self) {
        self.inner = None;
    }

    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }
}
