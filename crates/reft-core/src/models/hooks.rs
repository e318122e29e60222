//! How a backbone hands its hidden states to the interventions ([`Hooks`]), and a hidden state
//! whose last edit is still pending ([`Edited`]).
//!
//! An intervention edits a few rows of `[b·t, d]`: `h[rows] += Φ(h[rows]) − h[rows]`. Applied
//! as candle's `index_add`, that edit is a new activation-sized tensor, and the graph keeps the
//! unedited one too (the gather and the scatter both hold it), so a layer with an intervention
//! on its output kept two copies of the residual stream. Left pending, the edit is applied by
//! its consumer, the next layer's attention node (`llama_block.rs`), which keeps only the
//! unedited state and the edit's rows and recomputes the edited state in its backward.

use super::llama::Component;
use candle_core::{Result, Tensor};

/// Edits hidden states at intervention sites. `h` is `[batch, seq, hidden]`.
pub trait Hooks {
    /// `h` edited by the interventions at `site` of `layer`, the last edit left pending.
    fn apply_pending(&self, layer: usize, site: Component, h: Tensor) -> Result<Edited>;

    /// `h` edited by the interventions at `site` of `layer`.
    fn apply(&self, layer: usize, site: Component, h: Tensor) -> Result<Tensor> {
        self.apply_pending(layer, site, h)?.materialize()
    }

    /// Whether any intervention edits `site` of `layer` (if not, a block node may fold the
    /// residual add that follows the site into itself).
    fn edits(&self, layer: usize, site: Component) -> bool;
}

/// No interventions.
pub struct NoHooks;

impl Hooks for NoHooks {
    fn apply_pending(&self, _: usize, _: Component, h: Tensor) -> Result<Edited> {
        Ok(Edited::plain(h))
    }

    fn edits(&self, _: usize, _: Component) -> bool {
        false
    }
}

/// Rows `rows` (u32, into the `[b·t, d]` view) to move by `delta` (`[rows, d]`, the hidden
/// dtype), which carries the intervention's graph.
pub struct RowEdit {
    pub rows: Tensor,
    pub delta: Tensor,
}

impl RowEdit {
    /// `h` `[b, t, d]` with the edit applied (candle's `index_add`, with its graph).
    pub fn apply_to(&self, h: &Tensor) -> Result<Tensor> {
        let (b, t, d) = h.dims3()?;
        h.reshape((b * t, d))?.index_add(&self.rows, &self.delta, 0)?.reshape((b, t, d))
    }

    /// [`Self::apply_to`] on values only: no graph through `h` or the edit. On CUDA one kernel
    /// over the edited elements (`ops/cuda_fused/rows_add.rs`).
    pub fn apply_detached(&self, h: &Tensor) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if crate::ops::fused_rows_add_applies(h, &self.delta) {
            let (b, t, d) = h.dims3()?;
            return crate::ops::fused_rows_add(&h.reshape((b * t, d))?, &self.rows, &self.delta)?.reshape((b, t, d));
        }
        RowEdit { rows: self.rows.clone(), delta: self.delta.detach() }.apply_to(&h.detach())
    }
}

/// The rows `rows` of `flat` `[n, d]`, with a graph. On CUDA the backward scatters with the
/// fused kernel rather than candle's `index_add`.
pub fn gather_rows(flat: &Tensor, rows: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if flat.track_op() && crate::ops::fused_rows_add_applies(flat, flat) {
        return crate::ops::fused_gather_rows(flat, rows);
    }
    flat.index_select(rows, 0)
}

/// A hidden state `[b, t, d]` and at most one edit not yet applied to it.
pub struct Edited {
    pub base: Tensor,
    pub edit: Option<RowEdit>,
}

impl Edited {
    pub fn plain(h: Tensor) -> Self {
        Self { base: h, edit: None }
    }

    /// Whether the state carries a graph (through its base or its edit).
    pub fn track_op(&self) -> bool {
        self.base.track_op() || self.edit.as_ref().map(|e| e.delta.track_op()).unwrap_or(false)
    }

    /// The edited state as one tensor.
    pub fn materialize(self) -> Result<Tensor> {
        match &self.edit {
            None => Ok(self.base),
            Some(e) => e.apply_to(&self.base),
        }
    }
}
