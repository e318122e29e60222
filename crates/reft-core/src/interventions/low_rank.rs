//! An intervention's edit `Φ(h) − h` as one graph node with a backward we write, for the kinds
//! whose edit is a low-rank map of the rows with the identity activation: LoReFT, DiReFT and
//! the orthogonal DiReFT.
//!
//! Op by op, a LoReFT edit is about fourteen nodes of candle's graph (casts, three GEMMs, two
//! transposes, the bias's broadcast, two differences, the final difference and cast), and
//! candle's backward adds every node's input gradients into zero-filled tensors of their own.
//! That is tens of small kernels per intervention and step; on a GPU the host's launching sets
//! their pace (the 1.1B census of 2026-11-27 counted 1,635 `badd_f32` kernels a step, most of
//! them the interventions'). Here the forward runs on detached values and one node
//! (`ops/attach.rs`) carries the closed-form backward. With the rows `h` (`[n, d]`, widened to
//! f32), `s = h·Wᵀ + b − [h·Rc]` (the bracket for LoReFT only), the output map `Q` (`Rcᵀ`, or
//! DiReFT's `W₂`) and dropout's scaled keep mask `m` (absent in eval mode):
//!
//! ```text
//! δ = m ⊙ (h + s·Q) − h                        (without dropout: δ = s·Q)
//! g = ∂L/∂δ,  gm = m ⊙ g,  u = gm·Qᵀ
//! ∂h = u·W − [u·Rcᵀ] + (gm − g)
//! ∂W = uᵀ·h,  ∂b = Σ_rows u
//! ∂Rc = gmᵀ·s − [hᵀ·u]                          (Q = Rcᵀ)
//! ∂W₂ = sᵀ·gm                                   (Q = W₂)
//! ```
//!
//! In half precision the node rounds `Φ(h)` once and returns `round(Φ(h)) − h`, which bf16
//! holds exactly wherever the edit is smaller than the state, so that the consumer's `h + δ` is
//! the rounded `Φ(h)`; the op-by-op path rounds `Φ(h) − h` and then the sum. On SmolLM2 in bf16
//! (LoReFT on all 30 layers at one position, `tests/half.rs`'s setup) the two measured about
//! equally far from f32, loss within 0.002–3.2% against 0.5–1.7% at four points of an f32
//! training run: the base model's own rounding dominates either.
//!
//! The node's inputs are the rows in the hidden dtype, `Rc` or `W₂`, and `[W | b]` (candle's
//! custom ops take at most three). `tests/intervention_nodes.rs` proves the node equal to the
//! op-by-op graph (values and every gradient, with and without dropout) and its gradients
//! against finite differences. `REFT_INTERVENTION_NODES=0` (or `set_intervention_nodes(false)`)
//! restores the op-by-op graph.

use super::common::{dropout_mask, param, rotation_for, Affine, Ctx};
use super::rotation::Rotation;
use super::{Activation, InterventionSpec};
use crate::ops::Switch;
use candle_core::{DType, Result, Tensor, Var};

static NODES: Switch = Switch::new("REFT_INTERVENTION_NODES", true);

/// Runs the edits of LoReFT, DiReFT and orthogonal DiReFT (identity activation) as one graph
/// node each, for the whole process, overriding `REFT_INTERVENTION_NODES` (on by default).
pub fn set_intervention_nodes(on: bool) {
    NODES.set(on);
}

/// Whether edits run as one node ([`set_intervention_nodes`]).
pub fn intervention_nodes_on() -> bool {
    NODES.on()
}

/// How the edit leaves the rank-`r` space.
pub(super) enum OutMap<'a> {
    /// Through `Rc` (`[d, r]`, orthonormal columns): `δ = s·Rcᵀ`; `subtract` puts LoReFT's
    /// `−h·Rc` into `s`.
    Rotation { rotation: &'a Rotation, subtract: bool },
    /// Through DiReFT's `W₂` (`[r, d]`): `δ = s·W₂`.
    Rows(&'a Var),
}

/// [`super::Intervention::delta`] for the kinds with a one-node edit: `None` (the op-by-op path) for a
/// non-identity activation or with the nodes switched off.
pub(super) fn node_delta(spec: &InterventionSpec, h: &Tensor, source: &Affine, out: OutMap<'_>, ctx: &mut Ctx) -> Result<Option<Tensor>> {
    if spec.activation != Activation::Linear || !NODES.on() {
        return Ok(None);
    }
    Ok(Some(low_rank_delta(h, source, out, spec.dropout, ctx)?))
}

/// `Φ(h) − h` for the rows `h` (`[n, d]`, the hidden dtype), rounded to `h`'s dtype, as one
/// node; computed in f32 (f64 for f64 rows) like the op-by-op path. `source` is `W`, `b`.
fn low_rank_delta(h: &Tensor, source: &Affine, out: OutMap<'_>, dropout: f64, ctx: &mut Ctx) -> Result<Tensor> {
    let c = if h.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let (subtract, rows_map) = match &out {
        OutMap::Rotation { subtract, .. } => (*subtract, false),
        OutMap::Rows(_) => (false, true),
    };
    // `q` is `Rc` `[d, r]` or `W₂` `[r, d]`, with the graph to its parameter.
    let q = match out {
        OutMap::Rotation { rotation, .. } => rotation_for(rotation, ctx, c)?,
        OutMap::Rows(w2) => param(w2, ctx).to_dtype(c)?,
    };
    let w = param(&source.weight, ctx).to_dtype(c)?;
    let bias = source.bias.as_ref().map(|b| param(b, ctx).to_dtype(c)).transpose()?;
    let d = w.dim(1)?;
    let wb = match &bias {
        Some(b) => Tensor::cat(&[&w, &b.unsqueeze(1)?], 1)?,
        None => w.clone(),
    };

    let x = h.detach().to_dtype(c)?;
    let mask = dropout_mask(&x, dropout, ctx)?;
    let (wd, qd) = (w.detach(), q.detach());
    let s = if subtract { x.matmul(&(wd.t()? - &qd)?)? } else { x.matmul(&wd.t()?)? };
    let s = match &bias {
        Some(b) => s.broadcast_add(&b.detach())?,
        None => s,
    };
    let y = if rows_map { s.matmul(&qd)? } else { s.matmul(&qd.t()?)? };
    let value = if matches!(h.dtype(), DType::BF16 | DType::F16) {
        // The edited rows `Φ(h)` rounded once to the hidden dtype, and the edit as their
        // difference from `h`, which that dtype holds exactly wherever the edit is smaller than
        // the state (Sterbenz): `h + δ` then is the rounded `Φ(h)` itself, as the replacement
        // pyvene makes gives. Rounding `s·Q` first and adding it to `h` would round twice.
        let out = match &mask {
            Some(m) => (&x + y)?.mul(m)?,
            None => (&x + y)?,
        };
        (out.to_dtype(h.dtype())? - h.detach())?
    } else {
        match &mask {
            Some(m) => ((&x + y)?.mul(m)? - &x)?,
            None => y,
        }
    };
    let has_bias = bias.is_some();
    crate::ops::attach3("intervention", (h, &q, &wb), value, move |h_arg, q_arg, wb_arg, _, g| {
        let x = h_arg.detach().to_dtype(c)?;
        let (q, w) = (q_arg.detach(), wb_arg.detach().narrow(1, 0, d)?);
        let gc = g.to_dtype(c)?;
        let gm = match &mask {
            Some(m) => gc.mul(m)?,
            None => gc.clone(),
        };
        // `Qᵀ` is `Rc` itself, or `W₂ᵀ`.
        let u = if rows_map { gm.matmul(&q.t()?)? } else { gm.matmul(&q)? };
        let dwb = if wb_arg.track_op() {
            let dw = u.t()?.matmul(&x)?;
            Some(if has_bias { Tensor::cat(&[&dw, &u.sum_keepdim(0)?.t()?], 1)? } else { dw })
        } else {
            None
        };
        let dq = if !q_arg.track_op() {
            None
        } else if rows_map {
            Some(s.t()?.matmul(&gm)?)
        } else if subtract {
            Some((gm.t()?.matmul(&s)? - x.t()?.matmul(&u)?)?)
        } else {
            Some(gm.t()?.matmul(&s)?)
        };
        let dh = if h_arg.track_op() {
            let dx = if subtract { u.matmul(&(&w - q.t()?)?)? } else { u.matmul(&w)? };
            let dx = match &mask {
                Some(_) => ((dx + &gm)? - &gc)?,
                None => dx,
            };
            Some(dx.to_dtype(h_arg.dtype())?)
        } else {
            None
        };
        Ok((dh, dq, dwb))
    })
}
