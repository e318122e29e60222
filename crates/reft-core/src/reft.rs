//! [`ReftModel`]: a frozen base [`Model`] plus interventions at (layer, component) sites,
//! applied at per-example positions, and for encoders an optional trainable classification
//! head. Forward, loss and the hook plumbing live here; training, generation and checkpoints
//! are in their own modules.

use crate::batch::{Batch, IGNORE_INDEX};
use crate::error::{ReftError, Result};
use crate::interventions::{self, Ctx, Intervention, InterventionSpec};
use crate::head::{ClassifierHead, HeadSpec};
use crate::models::{Backbone, Component, Edited, EncoderInput, ForwardInput, Hooks, Model, RowEdit};
use crate::ops::lm_cross_entropy;
use crate::train::AdamW;
use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use crate::prefix_cache::{PrefixCache, RowKey};
use crate::models::NoHooks;

/// A base model with interventions.
pub struct ReftModel {
    pub base: Arc<Model>,
    pub interventions: Vec<Box<dyn Intervention>>,
    /// Dropout on (training mode) or off.
    pub training: bool,
    /// Seed of the dropout masks: step `k`'s masks come from `(dropout_seed, k, micro-batch)`,
    /// so a resumed run draws exactly the masks the uninterrupted one would have.
    pub dropout_seed: u64,
    pub(crate) optimizer: AdamW,
    /// Caller-owned JSON saved with the checkpoint (the TS layer keeps its config here).
    pub metadata: Option<serde_json::Value>,
    /// Byte budget of the training-time frozen-prefix cache (0 disables it).
    pub prefix_cache_bytes: usize,
    #[doc(hidden)]
    pub prefix_cache: Mutex<Option<PrefixCache>>,
    /// Classification/regression head (encoders only), trained with the interventions.
    pub head: Option<ClassifierHead>,
    /// Train-time forward over only the positions that can carry a gradient (decoders; see
    /// `frozen_window.rs`). On by default; off runs every position with a graph.
    pub frozen_window: bool,
}

/// Default budget of the frozen-prefix cache.
pub const DEFAULT_PREFIX_CACHE_BYTES: usize = 512 << 20;

/// Output of [`ReftModel::forward`].
pub struct ForwardOutput {
    /// `[b, t, vocab]` LM logits, or `[b, num_labels]` head outputs, when requested.
    pub logits: Option<Tensor>,
    pub loss: Option<f64>,
    pub num_tokens: usize,
}

/// Applies the interventions registered for each site.
pub(crate) struct SiteHooks<'a> {
    model: &'a ReftModel,
    rows: Vec<Tensor>,
    track: bool,
    rng: RefCell<Option<&'a mut StdRng>>,
    /// Compute the rotations of all applied interventions in one batch (`rotation_batch.rs`)
    /// at the first edit; off where hooks serve one layer at a time (recomputation).
    pub(crate) batch_rotations: bool,
    rotations: RefCell<Option<Vec<Option<Tensor>>>>,
}

impl SiteHooks<'_> {
    /// The interventions at `site` of `layer` with rows in this batch, in order.
    fn at(&self, layer: usize, site: Component) -> Vec<usize> {
        let here = |(i, iv): (usize, &Box<dyn Intervention>)| {
            let s = iv.spec();
            (s.layer == layer && s.component == site && self.rows[i].elem_count() > 0).then_some(i)
        };
        self.model.interventions.iter().enumerate().filter_map(here).collect()
    }

    /// Intervention `i`'s edit of `h` `[b, t, d]`: `Φ(h[rows]) − h[rows]` on its rows.
    fn edit(&self, i: usize, h: &Tensor) -> candle_core::Result<RowEdit> {
        let (b, t, d) = h.dims3()?;
        // Half-precision models (bf16, f16) run the intervention in f32 on the gathered rows
        // (a few per sequence, so the casts are cheap): its parameters are f32, and
        // `Rᵀ(Wh + b − Rh)` is a difference of two near-equal projections that bf16 would round
        // away. Only the finished edit is rounded to the hidden dtype.
        let sel = crate::models::gather_rows(&h.reshape((b * t, d))?, &self.rows[i])?;
        let compute = if sel.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let rotation = self.batched_rotation(i, compute)?;
        let mut rng = self.rng.borrow_mut();
        let mut ctx = Ctx { track: self.track, rng: rng.as_deref_mut(), rotation };
        // The kinds with a one-node edit (`interventions/low_rank.rs`) widen the rows themselves.
        if let Some(delta) = self.model.interventions[i].delta(&sel, &mut ctx)? {
            return Ok(RowEdit { rows: self.rows[i].clone(), delta });
        }
        let sel = if matches!(sel.dtype(), DType::BF16 | DType::F16) { sel.to_dtype(DType::F32)? } else { sel };
        let out = self.model.interventions[i].forward(&sel, &mut ctx)?;
        // Rounded to the hidden dtype after the difference, so that the graph's `h` terms cancel
        // in f32 (a bf16 `Φ(h) − h` would round the rows' gradient to the size of the output's);
        // the one-node kinds round `Φ(h)` itself once (`low_rank.rs`).
        Ok(RowEdit { rows: self.rows[i].clone(), delta: (out - &sel)?.to_dtype(h.dtype())? })
    }

    /// Intervention `i`'s rotation from the batch of all applied interventions' rotations, made
    /// at the first call for rows of `dtype` (f32, or f64 for f64 models).
    fn batched_rotation(&self, i: usize, dtype: DType) -> candle_core::Result<Option<Tensor>> {
        if !self.batch_rotations {
            return Ok(None);
        }
        let mut cell = self.rotations.borrow_mut();
        if cell.is_none() {
            let applied: Vec<_> = self.model.interventions.iter().zip(&self.rows).map(|(iv, r)| iv.rotation().filter(|_| r.elem_count() > 0)).collect();
            *cell = Some(interventions::batched_matrices(&applied, self.track, dtype)?);
        }
        Ok(cell.as_ref().and_then(|v| v[i].clone()))
    }
}

impl Hooks for SiteHooks<'_> {
    fn apply_pending(&self, layer: usize, site: Component, h: Tensor) -> candle_core::Result<Edited> {
        let mut h = Edited::plain(h);
        for i in self.at(layer, site) {
            // Each intervention reads the state its predecessors at the site left.
            let x = h.materialize()?;
            h = Edited { edit: Some(self.edit(i, &x)?), base: x };
        }
        Ok(h)
    }

    fn edits(&self, layer: usize, site: Component) -> bool {
        !self.at(layer, site).is_empty()
    }
}

impl ReftModel {
    /// Fresh interventions for `specs`, initialised from `seed`.
    pub fn new(base: Arc<Model>, specs: &[InterventionSpec], seed: u64) -> Result<Self> {
        Self::with_head(base, specs, None, seed)
    }

    /// Fresh interventions and, for an encoder, a classification/regression head.
    pub fn with_head(base: Arc<Model>, specs: &[InterventionSpec], head: Option<HeadSpec>, seed: u64) -> Result<Self> {
        crate::cuda_device::keep_pool_memory(base.device())?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ivs = Vec::with_capacity(specs.len());
        for s in specs {
            s.validate(base.num_layers(), base.hidden_size())?;
            ivs.push(interventions::build(s, base.hidden_size(), &mut rng, base.device())?);
        }
        let head = match head {
            None => None,
            Some(spec) => {
                let enc = base.encoder().ok_or_else(|| {
                    ReftError::UnsupportedModel(format!(
                        "{} is a decoder: classification heads are implemented for encoders (bert, roberta, xlm-roberta)",
                        base.architecture()
                    ))
                })?;
                Some(ClassifierHead::new(spec, enc, &mut rng)?)
            }
        };
        let mut m = Self::from_parts(base, ivs, seed);
        m.head = head;
        Ok(m)
    }

    pub(crate) fn from_parts(base: Arc<Model>, interventions: Vec<Box<dyn Intervention>>, seed: u64) -> Self {
        crate::threads::pin_thread_count();
        Self {
            base,
            interventions,
            training: false,
            dropout_seed: seed ^ 0x5eed_d50f,
            optimizer: AdamW::default(),
            metadata: None,
            prefix_cache_bytes: DEFAULT_PREFIX_CACHE_BYTES,
            prefix_cache: Mutex::new(None),
            head: None,
            frozen_window: true,
        }
    }

    /// Trainable intervention values (pyreft's "trainable intervention params").
    pub fn num_trainable(&self) -> usize {
        self.interventions.iter().map(|iv| interventions::count_parameters(iv.as_ref())).sum()
    }

    /// Runs the model; returns the last hidden state `[b, t, d]` (before a decoder's final norm).
    /// Training (`track`) reads the states below the lowest intervened layer from the
    /// frozen-prefix cache.
    pub(crate) fn hidden(&self, batch: &Batch, track: bool, rng: Option<&mut StdRng>) -> Result<Tensor> {
        self.hidden_with(batch, track, rng, track)
    }

    /// [`Self::hidden`], with the frozen-prefix cache used or not (`cached`).
    pub(crate) fn hidden_with(&self, batch: &Batch, track: bool, rng: Option<&mut StdRng>, cached: bool) -> Result<Tensor> {
        batch.validate(self.interventions.len(), self.base.vocab_size())?;
        let hooks = self.hooks_for(batch, track, rng)?;
        let mask = batch.mask();
        let dec = match &self.base.backbone {
            Backbone::Decoder(d) => d,
            Backbone::Encoder(enc) => {
                let input = EncoderInput {
                    ids: &batch.input_ids,
                    batch_size: batch.batch_size,
                    seq_len: batch.seq_len,
                    token_types: batch.token_type_ids.as_deref(),
                    key_mask: &mask,
                };
                return Ok(enc.run_layers(&input, &hooks, 0..enc.layers.len(), None)?);
            }
        };
        let ids = Tensor::from_slice(&batch.input_ids, (batch.batch_size, batch.seq_len), &dec.device)?;
        // Position ids are 0..t for every row, as in pyreft training (HF's default).
        let position_ids: Vec<Vec<i64>> = vec![(0..batch.seq_len as i64).collect(); batch.batch_size];
        let input = ForwardInput { ids: &ids, key_mask: &mask, position_ids: &position_ids };
        let lowest = self.interventions.iter().map(|iv| iv.spec().layer).min().unwrap_or(0);
        if cached && lowest > 0 && self.prefix_cache_bytes > 0 {
            let h = self.cached_prefix(batch, &mask, lowest)?;
            return Ok(dec.run_layers(&input, &hooks, None, lowest..dec.layers.len(), Some(h))?);
        }
        Ok(dec.hidden_states(&input, &hooks, None)?)
    }

    /// The hidden state entering layer `layer` for every row, from the prefix cache where
    /// possible (see `prefix_cache.rs`); rows beyond their last real token are zero.
    pub(crate) fn cached_prefix(&self, batch: &Batch, mask: &[u8], layer: usize) -> Result<Tensor> {
        let dec = self.base.decoder()?;
        let (b, t, d) = (batch.batch_size, batch.seq_len, dec.cfg.hidden_size);
        let mut guard = self.prefix_cache.lock().map_err(|_| ReftError::NonFinite("poisoned prefix cache".into()))?;
        if guard.as_ref().map(|c| c.layer != layer).unwrap_or(true) {
            *guard = Some(PrefixCache::new(layer, self.prefix_cache_bytes));
        }
        let cache = guard.as_mut().expect("set above");
        let keys: Vec<RowKey> = (0..b).map(|r| RowKey::of(&batch.input_ids, mask, r, t)).collect();
        let misses: Vec<usize> = (0..b).filter(|&r| cache.get(&keys[r]).is_none()).collect();
        let mut fresh: Vec<Option<Tensor>> = vec![None; b];
        if !misses.is_empty() {
            let m = misses.len();
            let ids: Vec<u32> = misses.iter().flat_map(|&r| batch.input_ids[r * t..(r + 1) * t].to_vec()).collect();
            let sub_mask: Vec<u8> = misses.iter().flat_map(|&r| mask[r * t..(r + 1) * t].to_vec()).collect();
            let ids = Tensor::from_vec(ids, (m, t), &dec.device)?;
            let pos: Vec<Vec<i64>> = vec![(0..t as i64).collect(); m];
            let input = ForwardInput { ids: &ids, key_mask: &sub_mask, position_ids: &pos };
            let h = dec.run_layers(&input, &NoHooks, None, 0..layer, None)?;
            for (i, &r) in misses.iter().enumerate() {
                let row = h.get(i)?.narrow(0, 0, keys[r].len())?.contiguous()?;
                cache.put(keys[r].clone(), row.clone());
                fresh[r] = Some(row);
            }
        }
        let mut rows = Vec::with_capacity(b);
        for r in 0..b {
            let row = match fresh[r].take() {
                Some(x) => x,
                None => cache.get(&keys[r]).cloned().expect("hit checked above"),
            };
            let len = row.dim(0)?;
            rows.push(if len < t { Tensor::cat(&[&row, &Tensor::zeros((t - len, d), row.dtype(), row.device())?], 0)? } else { row });
        }
        Ok(Tensor::stack(&rows, 0)?)
    }

    /// The site hooks for a validated batch.
    pub(crate) fn hooks_for<'a>(&'a self, batch: &Batch, track: bool, rng: Option<&'a mut StdRng>) -> Result<SiteHooks<'a>> {
        self.hooks_from(batch, track, rng, 0)
    }

    /// The site hooks for hidden states that cover positions `offset..seq_len` of each row
    /// (every intervened position must be `>= offset`).
    pub(crate) fn hooks_from<'a>(&'a self, batch: &Batch, track: bool, rng: Option<&'a mut StdRng>, offset: usize) -> Result<SiteHooks<'a>> {
        Ok(self.hooks_with(self.intervention_rows(batch, offset)?, track, rng))
    }

    /// Hooks over rows made by [`Self::intervention_rows`] (shared by the runs of one step).
    pub(crate) fn hooks_with<'a>(&'a self, rows: Vec<Tensor>, track: bool, rng: Option<&'a mut StdRng>) -> SiteHooks<'a> {
        SiteHooks { model: self, rows, track, rng: RefCell::new(rng), batch_rotations: true, rotations: RefCell::new(None) }
    }

    /// Each intervention's rows of the flattened `[b·(t − offset), d]` states, on the device.
    pub(crate) fn intervention_rows(&self, batch: &Batch, offset: usize) -> Result<Vec<Tensor>> {
        let dev = self.base.device();
        let (t, w) = (batch.seq_len, batch.seq_len - offset);
        let mut rows = Vec::with_capacity(self.interventions.len());
        for i in 0..self.interventions.len() {
            let r: Vec<u32> = batch.rows(i).into_iter().map(|r| {
                let (e, p) = (r as usize / t, r as usize % t);
                (e * w + p - offset) as u32
            }).collect();
            let n = r.len();
            rows.push(Tensor::from_vec(r, n, dev)?);
        }
        Ok(rows)
    }

    /// The training loss from hidden states and how many tokens (or examples) it averages.
    /// `offset` is the first position `h` covers (see `frozen_window.rs`); 0 for full rows.
    /// `frozen_top` holds the states of positions `0..offset` (no graph) for their labels.
    pub(crate) fn loss(&self, h: &Tensor, batch: &Batch, offset: usize, frozen_top: Option<&Tensor>) -> Result<(Tensor, usize)> {
        match &self.head {
            Some(head) => {
                let targets = batch.class_labels.as_ref().ok_or_else(|| {
                    ReftError::config("class_labels", "required to compute the loss of a model with a classification head")
                })?;
                Ok((head.loss(&head.forward(h)?, targets, self.base.device())?, batch.batch_size))
            }
            None => self.lm_loss(h, batch, offset, frozen_top),
        }
    }

    /// Causal-LM loss (HF's shifted cross-entropy, mean over labelled tokens) from hidden states.
    /// The final norm and LM head run only on the labelled rows. Labelled positions before
    /// `offset` are read from `frozen_top` and add a constant to the sum.
    fn lm_loss(&self, h: &Tensor, batch: &Batch, offset: usize, frozen_top: Option<&Tensor>) -> Result<(Tensor, usize)> {
        let dec = self.base.decoder()?;
        let labels = batch.labels.as_ref().ok_or_else(|| ReftError::config("labels", "missing"))?;
        let (b, t) = (batch.batch_size, batch.seq_len);
        let w = t - offset;
        // (rows, targets) of the window's labelled positions and of the frozen ones.
        let (mut live, mut frozen) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for e in 0..b {
            for p in 0..t.saturating_sub(1) {
                let y = labels[e * t + p + 1];
                if y == IGNORE_INDEX {
                    continue;
                }
                if p >= offset {
                    live.0.push((e * w + p - offset) as u32);
                    live.1.push(y as u32);
                } else if frozen_top.is_some() {
                    frozen.0.push((e * offset + p) as u32);
                    frozen.1.push(y as u32);
                } else {
                    return Err(ReftError::config("labels", format!("position {p} is labelled but lies before the window at {offset}")));
                }
            }
        }
        let n = live.0.len() + frozen.0.len();
        if n == 0 {
            return Err(ReftError::config("labels", "the batch has no labelled tokens after shifting"));
        }
        let dev = &dec.device;
        // Σ nll over `rows` of `x` ([b, len, d]); fused and chunked: the [n, vocab] logits never
        // exist all at once (ops/lm_cross_entropy.rs).
        let nll = |x: &Tensor, (rows, targets): (Vec<u32>, Vec<u32>)| -> Result<Tensor> {
            let k = rows.len();
            let rows = Tensor::from_vec(rows, k, dev)?;
            let targets = Tensor::from_vec(targets, (k, 1), dev)?;
            let sel = crate::models::llama::hidden_rows(x)?.index_select(&rows, 0)?;
            Ok(lm_cross_entropy(&dec.final_norm(&sel)?, &dec.lm_head, &targets)?)
        };
        if frozen.0.is_empty() {
            return Ok((nll(h, live)?.mean_all()?, n));
        }
        let constant = nll(frozen_top.expect("checked above"), frozen)?.sum_all()?;
        let sum = if live.0.is_empty() { constant } else { (nll(h, live)?.sum_all()? + constant)? };
        Ok((sum.affine(1.0 / n as f64, 0.0)?, n))
    }

    /// The loss as a tensor with its graph (for callers that run their own backward).
    pub fn loss_graph(&self, batch: &Batch) -> Result<Tensor> {
        if self.loss_is_frozen(batch) {
            return Ok(self.frozen_loss(batch)?.0);
        }
        let g = self.hidden_for_grad(batch, None)?;
        Ok(self.loss(&g.h, batch, g.offset, g.frozen_top.as_ref())?.0)
    }

    /// Inference forward (no graph, dropout off): logits for every position (or the head's
    /// outputs) and the loss when the batch has labels.
    pub fn forward(&self, batch: &Batch, want_logits: bool) -> Result<ForwardOutput> {
        let h = self.hidden(batch, false, None)?;
        if let Some(head) = &self.head {
            let logits = head.forward(&h)?;
            let loss = match &batch.class_labels {
                Some(y) => Some(head.loss(&logits, y, self.base.device())?.to_dtype(DType::F64)?.to_scalar::<f64>()?),
                None => None,
            };
            let n = if loss.is_some() { batch.batch_size } else { 0 };
            return Ok(ForwardOutput { logits: want_logits.then_some(logits), loss, num_tokens: n });
        }
        let (loss, num_tokens) = match &batch.labels {
            Some(_) => {
                let (l, n) = self.loss(&h, batch, 0, None)?;
                (Some(l.to_dtype(DType::F64)?.to_scalar::<f64>()?), n)
            }
            None => (None, 0),
        };
        let logits = match (want_logits, &self.base.backbone) {
            (false, _) => None,
            (true, Backbone::Decoder(dec)) => Some(dec.logits(&h)?),
            // An encoder without a head: its last hidden state is the output.
            (true, Backbone::Encoder(_)) => Some(h),
        };
        Ok(ForwardOutput { logits, loss, num_tokens })
    }
}
