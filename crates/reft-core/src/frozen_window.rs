//! The training forward of a decoder over only the positions that can carry a gradient.
//!
//! Attention is causal, so the hidden state at position `p` depends on positions `<= p` only.
//! If every intervened position and every labelled position of a batch is `>= P`, the states at
//! positions `< P` are the frozen model's at every layer: they neither depend on a trainable
//! parameter nor feed the loss except as attention keys and values. pyreft (and a plain autograd
//! forward) still records them in the graph and back-propagates through them. Here they run
//! once without a graph and leave only their keys and values (a KV cache, as in decoding); the
//! window `P..t` then runs with the graph, attending to those cached keys.
//!
//! With the frozen-prefix cache on (the default), each example's keys and values of those positions
//! are cached too, so an example seen again skips them entirely.
//!
//! `P` is the first intervened position of the batch. Labelled positions before it carry loss
//! but no gradient: their loss comes from the same run without a graph (the states it leaves
//! at the last layer). When no labelled position of an example comes at or after that
//! example's first intervened position, the loss does not depend on any trainable parameter
//! and its gradient is exactly zero ([`ReftModel::loss_is_frozen`]): a step then runs one
//! forward without a graph (pyreft back-propagates through the whole model to find zeros).
//!
//! The result is the same function: the loss equals the full forward's and the gradients are
//! the same (tests in `tests/conformance.rs`), while the backward does `(t − P) / t` of the
//! work. With pyreft's quickstart setup (one intervention at the last prompt token, loss on the
//! completion) `P` is the prompt length less one, often most of the sequence. With positions
//! such as `f7+l7`, `P` is 0 and this path is not taken.

use crate::batch::{Batch, IGNORE_INDEX};
use crate::error::{ReftError, Result};
use crate::models::{Backbone, ForwardInput, KvCache, NoHooks};
use crate::prefix_cache::{FrozenRows, PrefixCache, RowKey};
use crate::reft::ReftModel;
use candle_core::Tensor;
use rand::rngs::StdRng;

/// Rows of a flat `[b, t]` array restricted to positions `from..from + len`.
fn window<T: Copy>(xs: &[T], b: usize, t: usize, from: usize, len: usize) -> Vec<T> {
    (0..b).flat_map(|e| xs[e * t + from..e * t + from + len].iter().copied()).collect()
}

impl ReftModel {
    /// Per example, its first intervened position (`seq_len` when it has none).
    fn first_intervened(&self, batch: &Batch) -> Vec<usize> {
        let t = batch.seq_len;
        let mut first = vec![t; batch.batch_size];
        for i in 0..self.interventions.len() {
            for r in batch.rows(i) {
                let (e, p) = (r as usize / t, r as usize % t);
                first[e] = first[e].min(p);
            }
        }
        first
    }

    /// Whether the causal structure applies: a decoder's LM loss, the window not turned off, and
    /// a batch that validates (what follows indexes its positions and labels; an invalid batch
    /// gets its coded error from the run that validates it).
    fn causal_loss(&self, batch: &Batch) -> bool {
        self.frozen_window
            && self.head.is_none()
            && matches!(self.base.backbone, Backbone::Decoder(_))
            && batch.labels.is_some()
            && batch.validate(self.interventions.len(), self.base.vocab_size()).is_ok()
    }

    /// Labelled tokens (after HF's shift) whose loss can depend on an intervention: those at or
    /// after their example's first intervened position (attention is causal). `None` where
    /// that does not apply (encoders, classification heads, no labels, the window off).
    pub fn labels_after_interventions(&self, batch: &Batch) -> Option<usize> {
        if !self.causal_loss(batch) {
            return None;
        }
        let labels = batch.labels.as_ref()?;
        let t = batch.seq_len;
        let first = self.first_intervened(batch);
        let n = (0..batch.batch_size)
            .map(|e| (first[e]..t.saturating_sub(1)).filter(|&p| labels[e * t + p + 1] != IGNORE_INDEX).count())
            .sum();
        Some(n)
    }

    /// True when the batch has labelled tokens but none can depend on an intervention (see
    /// [`Self::labels_after_interventions`]): its loss is a constant and its gradient zero.
    pub fn loss_is_frozen(&self, batch: &Batch) -> bool {
        let has_labels = batch.labels.as_ref().map(|l| {
            let t = batch.seq_len;
            (0..batch.batch_size).any(|e| (1..t).any(|p| l[e * t + p] != IGNORE_INDEX))
        });
        has_labels == Some(true) && self.labels_after_interventions(batch) == Some(0)
    }

    /// The first position of `batch` whose state can depend on a trainable parameter (the
    /// graph's window starts there); 0 when the window is off or does not apply.
    pub fn frozen_positions(&self, batch: &Batch) -> usize {
        if !self.causal_loss(batch) || self.loss_is_frozen(batch) {
            return 0;
        }
        let split = self.first_intervened(batch).into_iter().min().unwrap_or(0);
        if split >= batch.seq_len {
            0
        } else {
            split
        }
    }

    /// Last hidden state with a graph for the loss: `[b, t, d]` with offset 0, or, when the
    /// frozen window applies, `[b, t − P, d]` with offset `P` and the frozen positions' states
    /// `[b, P, d]` (no graph) for their labels.
    pub(crate) fn hidden_for_grad(&self, batch: &Batch, rng: Option<&mut StdRng>) -> Result<GradHidden> {
        batch.validate(self.interventions.len(), self.base.vocab_size())?;
        if self.frozen_positions(batch) == 0 {
            return Ok(GradHidden { h: self.hidden(batch, true, rng)?, offset: 0, frozen_top: None });
        }
        let mut w = self.window(batch)?;
        let dec = self.base.decoder()?;
        let hooks = self.hooks_from(batch, true, rng, w.split)?;
        let mut kv = w.kv.take();
        let h = dec.run_layers(&w.input(), &hooks, kv.as_mut(), w.lowest..dec.layers.len(), w.h_in.clone())?;
        Ok(GradHidden { h, offset: w.split, frozen_top: w.top.take() })
    }

    /// The loss of a training batch whose loss no intervention can change
    /// ([`Self::loss_is_frozen`]): one forward without a graph, from the frozen-prefix cache's
    /// states where it has them.
    pub(crate) fn frozen_loss(&self, batch: &Batch) -> Result<(Tensor, usize)> {
        let h = self.hidden_with(batch, false, None, true)?;
        self.loss(&h, batch, 0, None)
    }

    /// The inputs of the layers from the lowest intervened one up, over the window `P..t`
    /// (`P` = [`Self::frozen_positions`], possibly 0) of a validated decoder batch: the states
    /// entering that layer (no graph) and, when `P > 0`, the keys and values of positions `< P`
    /// at every layer from it.
    pub(crate) fn window(&self, batch: &Batch) -> Result<Window> {
        let split = self.frozen_positions(batch);
        let dec = self.base.decoder()?;
        let (b, t) = (batch.batch_size, batch.seq_len);
        let mask = batch.mask();
        let lowest = self.interventions.iter().map(|iv| iv.spec().layer).min().unwrap_or(0);
        // The states entering the lowest intervened layer (no graph): cached, or computed.
        let h_low = if lowest == 0 {
            None
        } else if self.prefix_cache_bytes > 0 {
            Some(self.cached_prefix(batch, &mask, lowest)?)
        } else {
            let ids = Tensor::from_slice(&batch.input_ids, (b, t), &dec.device)?;
            let pos: Vec<Vec<i64>> = vec![(0..t as i64).collect(); b];
            let input = ForwardInput { ids: &ids, key_mask: &mask, position_ids: &pos };
            Some(dec.run_layers(&input, &NoHooks, None, 0..lowest, None)?)
        };
        let narrow = |from: usize, len: usize| -> Result<Option<Tensor>> {
            Ok(match &h_low {
                Some(h) if len == t => Some(h.clone()),
                Some(h) => Some(h.narrow(1, from, len)?.contiguous()?),
                None => None,
            })
        };
        let (kv, top) = match split {
            0 => (None, None),
            _ => {
                let (kv, top) = self.frozen_kv(batch, &mask, lowest, split, narrow(0, split)?)?;
                (Some(kv), Some(top))
            }
        };
        let w = t - split;
        Ok(Window {
            split,
            lowest,
            ids: Tensor::from_vec(window(&batch.input_ids, b, t, split, w), (b, w), &dec.device)?,
            // Positions split..t attend to the cached keys: the full key mask.
            key_mask: mask,
            position_ids: vec![(split as i64..t as i64).collect(); b],
            kv,
            top,
            h_in: narrow(split, w)?,
        })
    }
}

impl ReftModel {
    /// Keys and values of positions `0..split` at every layer from `lowest` up, and those
    /// positions' states leaving the last layer `[b, split, d]`: from the prefix cache when every
    /// row has them, else computed (no hooks, no graph) and cached per row.
    fn frozen_kv(&self, batch: &Batch, mask: &[u8], lowest: usize, split: usize, h_in: Option<Tensor>) -> Result<(KvCache, Tensor)> {
        let dec = self.base.decoder()?;
        let (b, t, n_layers) = (batch.batch_size, batch.seq_len, dec.layers.len());
        let keys: Vec<RowKey> = (0..b).map(|r| RowKey::of(&batch.input_ids, mask, r, t)).collect();
        if self.prefix_cache_bytes > 0 {
            let mut guard = self.prefix_cache.lock().map_err(|_| ReftError::NonFinite("poisoned prefix cache".into()))?;
            if guard.as_ref().map(|c| c.layer != lowest).unwrap_or(true) {
                *guard = Some(PrefixCache::new(lowest, self.prefix_cache_bytes));
            }
            let cache = guard.as_ref().expect("set above");
            let hits: Vec<&FrozenRows> = keys.iter().filter_map(|k| cache.get_kv(k, split)).collect();
            if hits.len() == b {
                let stack = |part: &dyn Fn(&FrozenRows) -> &Tensor, dim: usize| -> Result<Tensor> {
                    let rows = hits.iter().map(|h| part(h).narrow(dim, 0, split)).collect::<candle_core::Result<Vec<_>>>()?;
                    Ok(Tensor::stack(&rows, 0)?)
                };
                let mut layers = vec![None; n_layers];
                for (i, slot) in layers.iter_mut().enumerate().skip(lowest) {
                    *slot = Some((stack(&|h| &h.layers[i - lowest].0, 1)?, stack(&|h| &h.layers[i - lowest].1, 1)?));
                }
                return Ok((KvCache::from_layers(layers), stack(&|h| &h.top, 0)?));
            }
        }
        let mut kv = KvCache::default();
        let ids = Tensor::from_vec(window(&batch.input_ids, b, t, 0, split), (b, split), &dec.device)?;
        let key_mask = window(mask, b, t, 0, split);
        let pos: Vec<Vec<i64>> = vec![(0..split as i64).collect(); b];
        let input = ForwardInput { ids: &ids, key_mask: &key_mask, position_ids: &pos };
        let top = dec.run_layers(&input, &NoHooks, Some(&mut kv), lowest..n_layers, h_in)?;
        if self.prefix_cache_bytes > 0 {
            let mut guard = self.prefix_cache.lock().map_err(|_| ReftError::NonFinite("poisoned prefix cache".into()))?;
            if let Some(cache) = guard.as_mut() {
                for (r, key) in keys.into_iter().enumerate() {
                    let mut layers = Vec::with_capacity(n_layers - lowest);
                    for slot in &kv.layers[lowest..] {
                        let (k, v) = slot.as_ref().expect("filled by the run above");
                        layers.push((k.get(r)?.contiguous()?, v.get(r)?.contiguous()?));
                    }
                    cache.put_kv(key, FrozenRows { layers, top: top.get(r)?.contiguous()? });
                }
            }
        }
        Ok((kv, top))
    }
}

/// The last hidden state of a training forward (see [`ReftModel::hidden_for_grad`]).
pub(crate) struct GradHidden {
    /// `[b, t − offset, d]`, with the graph.
    pub h: Tensor,
    /// The first position `h` covers.
    pub offset: usize,
    /// `[b, offset, d]`: the states of positions `0..offset` leaving the last layer (no graph),
    /// when `offset > 0`.
    pub frozen_top: Option<Tensor>,
}

/// What the layers from `lowest` up need to run over positions `split..t` (see [`ReftModel::window`]).
pub(crate) struct Window {
    pub split: usize,
    pub lowest: usize,
    /// `[b, t − split]` token ids.
    pub ids: Tensor,
    pub key_mask: Vec<u8>,
    pub position_ids: Vec<Vec<i64>>,
    /// Keys and values of positions `< split` (from layer `lowest` up), when `split > 0`.
    pub kv: Option<KvCache>,
    /// `[b, split, d]`: positions `< split` leaving the last layer, when `split > 0`.
    pub top: Option<Tensor>,
    /// States entering layer `lowest`; `None` = the token embeddings (`lowest == 0`).
    pub h_in: Option<Tensor>,
}

impl Window {
    pub fn input(&self) -> ForwardInput<'_> {
        ForwardInput { ids: &self.ids, key_mask: &self.key_mask, position_ids: &self.position_ids }
    }

    /// A cache holding only layer `l`'s keys and values of the frozen positions, for running that
    /// layer alone (the run appends the window's keys to it, so each run gets its own).
    pub fn layer_cache(&self, l: usize) -> Option<KvCache> {
        let kv = self.kv.as_ref()?;
        let mut layers = vec![None; kv.layers.len()];
        layers[l] = kv.layers[l].clone();
        Some(KvCache::from_layers(layers))
    }
}
