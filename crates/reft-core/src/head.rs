//! Sequence classification and regression head on the first token: `out(tanh(dense(h₀)))`.
//!
//! This is RoBERTa's `RobertaClassificationHead` and the paper's `Hθ` (eq. 5), and also BERT's
//! `pooler → classifier` pair, whose dense layer is the pretrained pooler. What trains follows
//! pyreft's `--allow_cls_grad`, which unfreezes `model.classifier` only: for RoBERTa both
//! layers, for BERT just `out` (the pooler stays frozen) unless `train_dense` says otherwise.
//! `num_labels == 1` is regression (MSE), otherwise single-label classification
//! (cross-entropy), transformers' `problem_type` rule. HF's head dropout is not applied.

use crate::error::{ReftError, Result};
use crate::models::{Encoder, EncoderFamily};
use crate::ops::log_softmax_last;
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What head to put on an encoder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Classes; 1 means regression.
    pub num_labels: usize,
    /// Train the dense layer as well as `out`. Default: true, except for a BERT whose dense
    /// layer is its pretrained pooler (as pyreft's `allow_cls_grad`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_dense: Option<bool>,
}

/// The head's tensors; those that train are `Var`s in [`ClassifierHead::params`].
pub struct ClassifierHead {
    pub spec: HeadSpec,
    pub dense_weight: Var,
    pub dense_bias: Var,
    pub out_weight: Var,
    pub out_bias: Var,
    pub train_dense: bool,
}

/// HF's `_init_weights` for a fresh `nn.Linear`: N(0, 0.02²) weights, zero bias.
fn normal(rng: &mut StdRng, n: usize, std: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            // Box–Muller; `1 − u` keeps the logarithm finite.
            let (u, v): (f64, f64) = (rng.gen(), rng.gen());
            ((-2.0 * (1.0 - u).ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos() * std) as f32
        })
        .collect()
}

impl ClassifierHead {
    /// A head for `enc`: the checkpoint's classifier when it has one with `num_labels` classes,
    /// BERT's pooler as the dense layer, fresh weights for the rest.
    pub fn new(spec: HeadSpec, enc: &Encoder, rng: &mut StdRng) -> Result<Self> {
        if spec.num_labels == 0 {
            return Err(ReftError::config("head.num_labels", "must be at least 1 (1 = regression)"));
        }
        let (d, k, dev) = (enc.cfg.hidden_size, spec.num_labels, &enc.device);
        let f32_var = |t: &Tensor| -> Result<Var> { Ok(Var::from_tensor(&t.to_dtype(DType::F32)?)?) };
        let fresh = |rng: &mut StdRng, rows: usize| -> Result<(Var, Var)> {
            Ok((
                Var::from_tensor(&Tensor::from_vec(normal(rng, rows * d, 0.02), (rows, d), dev)?)?,
                Var::from_tensor(&Tensor::zeros(rows, DType::F32, dev)?)?,
            ))
        };
        let stored = enc.stored_head.as_ref().filter(|h| h.out.0.dims() == [k, d]);
        let (dense_weight, dense_bias, pretrained_pooler) = match (stored.and_then(|h| h.dense.as_ref()), &enc.pooler) {
            (Some((w, b)), _) => (f32_var(w)?, f32_var(b)?, false),
            (None, Some(p)) if enc.cfg.family == EncoderFamily::Bert => {
                let b = p.bias.as_ref().ok_or_else(|| ReftError::config("pooler", "has no bias"))?;
                (f32_var(&p.weight)?, f32_var(b)?, true)
            }
            _ => {
                let (w, b) = fresh(rng, d)?;
                (w, b, false)
            }
        };
        let (out_weight, out_bias) = match stored {
            Some(h) => (f32_var(&h.out.0)?, f32_var(&h.out.1)?),
            None => fresh(rng, k)?,
        };
        let train_dense = spec.train_dense.unwrap_or(!pretrained_pooler);
        Ok(Self { spec, dense_weight, dense_bias, out_weight, out_bias, train_dense })
    }

    /// Trainable tensors with their names under `head.`.
    pub fn params(&self) -> Vec<(String, Var)> {
        let mut p = Vec::new();
        if self.train_dense {
            p.push(("dense.weight".to_string(), self.dense_weight.clone()));
            p.push(("dense.bias".to_string(), self.dense_bias.clone()));
        }
        p.push(("out.weight".to_string(), self.out_weight.clone()));
        p.push(("out.bias".to_string(), self.out_bias.clone()));
        p
    }

    /// Every head tensor (trainable or not), for checkpoints.
    pub fn state(&self) -> Vec<(&'static str, &Var)> {
        vec![
            ("dense.weight", &self.dense_weight),
            ("dense.bias", &self.dense_bias),
            ("out.weight", &self.out_weight),
            ("out.bias", &self.out_bias),
        ]
    }

    /// Trainable values (the paper's tables exclude the head from "Params %").
    pub fn num_trainable(&self) -> usize {
        self.params().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Logits `[b, num_labels]` from the final hidden state `[b, t, d]` (first token), in f32.
    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let x = h.narrow(1, 0, 1)?.squeeze(1)?;
        let x = if x.dtype() == DType::F64 { x } else { x.to_dtype(DType::F32)? };
        let cast = |v: &Var| -> Result<Tensor> { Ok(v.as_tensor().to_dtype(x.dtype())?) };
        let dense = x.matmul(&cast(&self.dense_weight)?.t()?)?.broadcast_add(&cast(&self.dense_bias)?)?.tanh()?;
        Ok(dense.matmul(&cast(&self.out_weight)?.t()?)?.broadcast_add(&cast(&self.out_bias)?)?)
    }

    /// Mean loss of `logits` against per-example `targets`: MSE for regression, otherwise
    /// cross-entropy with `targets` holding class ids.
    pub fn loss(&self, logits: &Tensor, targets: &[f32], device: &Device) -> Result<Tensor> {
        let b = logits.dim(0)?;
        if targets.len() != b {
            return Err(ReftError::shape("class_labels", format!("{b} (one per example)"), targets.len().to_string()));
        }
        if let Some(bad) = targets.iter().find(|y| !y.is_finite()) {
            return Err(ReftError::config("class_labels", format!("{bad} is not finite")));
        }
        if self.spec.num_labels == 1 {
            let y = Tensor::from_slice(targets, b, device)?.to_dtype(logits.dtype())?;
            return Ok((logits.squeeze(1)? - y)?.sqr()?.mean_all()?);
        }
        let k = self.spec.num_labels;
        let mut ids = Vec::with_capacity(b);
        for &y in targets {
            if y < 0.0 || y.fract() != 0.0 || y as usize >= k {
                return Err(ReftError::range("class label", y as i64, format!("integers 0..{k}")));
            }
            ids.push(y as u32);
        }
        let ids = Tensor::from_vec(ids, (b, 1), device)?;
        Ok(log_softmax_last(logits)?.gather(&ids, 1)?.neg()?.mean_all()?)
    }
}
