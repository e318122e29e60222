//! Option objects crossing the boundary (`#[napi(object)]`, copied) and their conversion into
//! core types, in one place.

use crate::error::IntoNapi;
use napi::bindgen_prelude::{Float32Array, Int32Array, Uint32Array, Uint8Array};
use napi_derive::napi;
use reft_core::generate::GenerateOptions;
use reft_core::interventions::InterventionSpec;
use reft_core::train::StepOptions;
use reft_core::Batch;

/// Options for loading a base model.
#[napi(object)]
pub struct LoadOptions {
    /// 'cpu' (default) or 'cuda' (CUDA builds only).
    pub device: Option<String>,
    /// 'f32' (default) | 'bf16' | 'f16'.
    pub dtype: Option<String>,
}

/// One intervention at one (layer, component) site.
#[napi(object)]
#[derive(Clone)]
pub struct InterventionSpecObject {
    /// 'loreft' | 'direft' | 'direft_orth' | 'noreft' | 'consreft' | 'lobireft'.
    pub kind: String,
    pub layer: u32,
    /// 'block_output' (default) | 'block_input' | 'attention_output' | 'mlp_output'.
    pub component: Option<String>,
    pub rank: u32,
    /// Dropout on the edited vector in training mode. Default 0.
    pub dropout: Option<f64>,
    /// 'linear' (default) | 'relu' | 'gelu' | 'silu' | 'tanh'.
    pub activation: Option<String>,
    /// noreft / direft: bias on the projection layer (pyreft `add_bias`). Default false.
    pub add_bias: Option<bool>,
}

impl TryFrom<&InterventionSpecObject> for InterventionSpec {
    type Error = napi::Error;
    fn try_from(o: &InterventionSpecObject) -> napi::Result<Self> {
        let (layer, rank) = (o.layer as usize, o.rank as usize);
        InterventionSpec::from_fields(&o.kind, layer, o.component.as_deref(), rank, o.dropout, o.activation.as_deref(), o.add_bias).napi()
    }
}

impl From<&InterventionSpec> for InterventionSpecObject {
    fn from(s: &InterventionSpec) -> Self {
        Self {
            kind: s.kind.as_str().into(),
            layer: s.layer as u32,
            component: Some(s.component.as_str().into()),
            rank: s.rank as u32,
            dropout: Some(s.dropout),
            activation: Some(s.activation_name()),
            add_bias: Some(s.add_bias),
        }
    }
}

/// A batch (see `NativeBatch` in src/native-api.ts for the layout).
#[napi(object)]
pub struct BatchObject {
    pub input_ids: Uint32Array,
    pub batch_size: u32,
    pub seq_len: u32,
    pub attention_mask: Option<Uint8Array>,
    pub positions: Option<Int32Array>,
    pub num_positions: Option<u32>,
    pub labels: Option<Int32Array>,
    /// Segment ids for encoders (`token_type_ids`), `[batchSize * seqLen]`.
    pub token_type_ids: Option<Uint32Array>,
    /// Per-example targets of a classification (class ids) or regression head.
    pub class_labels: Option<Float32Array>,
}

impl From<&BatchObject> for Batch {
    fn from(b: &BatchObject) -> Self {
        Batch {
            input_ids: b.input_ids.to_vec(),
            batch_size: b.batch_size as usize,
            seq_len: b.seq_len as usize,
            attention_mask: b.attention_mask.as_ref().map(|m| m.to_vec()),
            positions: b.positions.as_ref().map(|p| p.iter().map(|&x| x as i64).collect()),
            num_positions: b.num_positions.unwrap_or(0) as usize,
            labels: b.labels.as_ref().map(|l| l.iter().map(|&x| x as i64).collect()),
            token_type_ids: b.token_type_ids.as_ref().map(|t| t.to_vec()),
            class_labels: b.class_labels.as_ref().map(|c| c.to_vec()),
        }
    }
}

/// Optimizer step options.
#[napi(object)]
pub struct StepOptionsObject {
    pub lr: f64,
    /// Decoupled weight decay on W matrices. Default 0.
    pub weight_decay: Option<f64>,
    /// Global grad-norm clip; <= 0 disables. Default 1.0.
    pub max_grad_norm: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    /// Per-layer activation recomputation (decoders): far less memory, one more forward. Default false.
    pub recompute: Option<bool>,
}

impl From<&StepOptionsObject> for StepOptions {
    fn from(o: &StepOptionsObject) -> Self {
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

/// Decoding options.
#[napi(object)]
pub struct GenerateOptionsObject {
    pub max_new_tokens: u32,
    /// Default true.
    pub greedy: Option<bool>,
    pub temperature: Option<f64>,
    pub top_k: Option<u32>,
    pub top_p: Option<f64>,
    pub seed: Option<u32>,
    pub stop_token_ids: Option<Vec<u32>>,
    /// Default true.
    pub use_cache: Option<bool>,
}

impl From<&GenerateOptionsObject> for GenerateOptions {
    fn from(o: &GenerateOptionsObject) -> Self {
        let d = GenerateOptions::default();
        GenerateOptions {
            max_new_tokens: o.max_new_tokens as usize,
            greedy: o.greedy.unwrap_or(true),
            temperature: o.temperature.unwrap_or(d.temperature),
            top_k: o.top_k.unwrap_or(0) as usize,
            top_p: o.top_p.unwrap_or(d.top_p),
            seed: o.seed.unwrap_or(0) as u64,
            stop_tokens: o.stop_token_ids.clone().unwrap_or_default(),
            use_cache: o.use_cache.unwrap_or(true),
        }
    }
}
