//! A decoder layer's attention and MLP sublayers as one graph node each, with a backward we
//! write, for training.
//!
//! Built op by op, a layer is about 26 nodes of candle's graph, and candle's backward adds every
//! node's input gradient into a zero-filled tensor of its own (`GradStore::or_insert` then
//! `add`). On the 1.1B anchor shape (16 × 256 tokens, an H200, 2026-11-27) that was 1,142
//! activation-sized `badd_bf16` kernels, 41 of the step's 111 ms of kernel time, among 7,625
//! kernels whose launches set the pace. The base weights are frozen, so a sublayer's backward
//! is a fixed chain of input gradients: here the forward runs on the detached input with the
//! same ops, the tensors that chain needs are kept (the attention's rotated queries and keys
//! and its values, from which the backward recomputes the probabilities unless
//! `REFT_KEEP_PROBS=1`; the MLP's gate and up projections), and one node (`attach.rs`)
//! hands the result to the graph. The chain calls each op's own backward (`ops::*_vjp`), which
//! `tests/gradcheck.rs` proves against finite differences, and `tests/block_ops.rs` proves the
//! whole against the op-by-op graph.
//!
//! Interventions sit between sublayers (`Hooks`), so the nodes leave every site in place. A
//! node also does what the graph would otherwise keep whole activations for: the residual add
//! after it (unless an intervention edits the sublayer's output first), and the attention node
//! the edit pending on its input (`hooks.rs`). `tests/kept_bytes.rs` counts what a layer keeps:
//! 12.9 activations of `[tokens, hidden]` with separate add and scatter nodes, 9.9 with them
//! folded in (its test model; 24.2 op by op).
//! On CUDA by default; `ops::set_block_ops` (or `REFT_BLOCK_OPS=0|1`) decides for every device.

use super::hooks::{Edited, RowEdit};
use super::kv_cache::CacheSlot;
use super::llama::{Decoder, LayerWeights};
use crate::ops::{
    attention_probs, attention_probs_vjp, batched_matmul, frozen_linear_vjp, qkv_rows_vjp, rms_norm, rms_norm_vjp, rms_norm_vjp_add, rope_vjp_rows,
    swiglu, swiglu_packed, swiglu_packed_vjp, swiglu_vjp, FrozenLinear, RopeTables,
};
use candle_core::{Result, Tensor};

impl Decoder {
    /// `o_proj(attention(rms_norm(h)))` of layer weights `w` as one node over `h` `[b, t, d]`,
    /// plus `h` itself when `residual` (the residual add folded in, so that no add node keeps
    /// the sublayer's output alive). An edit pending on `h` is applied here, and in the
    /// backward again from the unedited state, which is all the node keeps of it.
    /// `cache` holds keys and values of earlier positions (the frozen causal window of training),
    /// which get no gradient; it is updated as `attention` does.
    pub(super) fn attention_node(
        &self,
        w: &LayerWeights,
        h: Edited,
        mask: &Tensor,
        rope: &RopeTables,
        cache: Option<CacheSlot<'_>>,
        residual: bool,
    ) -> Result<Tensor> {
        let tracked = h.track_op();
        let Edited { base, edit } = h;
        let (b, t, _) = base.dims3()?;
        let (nh, nkv, hd) = (self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.head_dim);
        let (g, eps, scale) = (nh / nkv, self.cfg.rms_norm_eps, 1.0 / (hd as f64).sqrt());
        let hv = match &edit {
            Some(e) => e.apply_detached(&base)?,
            None => base.detach(),
        };
        let x = rms_norm(&hv, &w.input_norm, eps)?;
        let (q, k, v, past) = self.queries_keys_values(w, &x, rope, cache)?;
        drop(x);
        let (p, o) = crate::ops::trace::traced("attention", &q, || {
            let p = attention_probs(&q, &k, mask, scale)?.to_dtype(self.dtype)?;
            let o = self.merge_heads(&batched_matmul(&p, &v)?, b, t)?;
            Ok((p, o))
        })?;
        let y = w.o.forward(&o)?;
        drop(o);
        let y = if residual { (hv + y)? } else { y };
        if !tracked {
            return Ok(y);
        }
        let (wi, wq, wk, wv, wo) = (w.input_norm.clone(), w.q.weight.clone(), w.k.weight.clone(), w.v.weight.clone(), w.o.weight.clone());
        let wqkv = w.packed.as_ref().map(|p| p.qkv.weight.clone());
        let (rope, mask, dtype) = (rope.clone(), mask.clone(), self.dtype);
        // The probabilities are the largest activation a layer keeps (on the 7B anchor shape,
        // 128 MiB of 460 per layer); by default the backward recomputes them from the queries
        // and keys, as flash attention does, for one more `QKᵀ` and softmax per layer.
        let kept = if crate::ops::keep_attention_probs() { Some(p) } else { None };
        // The gradient with respect to the (edited) input `h`, given the output's `dy`.
        let chain = move |h: &Tensor, dy: &Tensor| -> Result<Tensor> {
            let d_o = frozen_linear_vjp(dy, &wo)?;
            let (dq, dk, dv) = crate::ops::trace::traced("attention grad", dy, || {
                let p = match &kept {
                    Some(p) => p.clone(),
                    None => attention_probs(&q, &k, &mask, scale)?.to_dtype(dtype)?,
                };
                let d_o = d_o.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, nkv, g * t, hd))?;
                let dp = batched_matmul(&d_o, &v.t()?)?;
                let dv = batched_matmul(&p.t()?, &d_o)?;
                drop(d_o);
                let (dq, dk) = attention_probs_vjp(&q, &k, &p, &dp, scale)?;
                Ok((dq, dk, dv))
            })?;
            drop(d_o);
            // Cached positions are constants: only the window's keys and values get gradients.
            let (dk, dv) = if past > 0 { (dk.narrow(2, past, t)?, dv.narrow(2, past, t)?) } else { (dk, dv) };
            let dq = dq.contiguous()?.reshape((b, nh, t, hd))?;
            let dx = match &wqkv {
                // The packed rows' gradient in one pass, then one GEMM.
                Some(wqkv) => frozen_linear_vjp(&qkv_rows_vjp(&dq, &dk, &dv, &rope)?, wqkv)?,
                None => {
                    // Back through the rotation, then to `[b, t, n·hd]` rows for the projections.
                    let unrope = |d: Tensor, n: usize| -> Result<Tensor> { rope_vjp_rows(&d.contiguous()?, &rope)?.reshape((b, t, n * hd)) };
                    let (dq, dk) = (unrope(dq, nh)?, unrope(dk, nkv)?);
                    let dv = dv.transpose(1, 2)?.contiguous()?.reshape((b, t, nkv * hd))?;
                    ((frozen_linear_vjp(&dq, &wq)? + frozen_linear_vjp(&dk, &wk)?)? + frozen_linear_vjp(&dv, &wv)?)?
                }
            };
            if residual {
                rms_norm_vjp_add(h, &wi, &dx, eps, dy)
            } else {
                rms_norm_vjp(h, &wi, &dx, eps)
            }
        };
        match edit {
            None => crate::ops::attach1("attention-block", &base, y, move |h, _y, dy| Ok(Some(chain(h, dy)?))),
            Some(e) => {
                let rows = e.rows;
                crate::ops::attach2("attention-block", &base, &e.delta, y, move |h, delta, _y, dy| {
                    let edit = RowEdit { rows: rows.clone(), delta: delta.clone() };
                    let dh = chain(&edit.apply_detached(h)?, dy)?;
                    let d = dh.dim(2)?;
                    let dd = if delta.track_op() { Some(dh.reshape((b * t, d))?.index_select(&rows, 0)?) } else { None };
                    Ok((h.track_op().then_some(dh), dd))
                })
            }
        }
    }

    /// `down(swiglu(gate(x), up(x)))` with `x = rms_norm(h)` of layer weights `w` as one node,
    /// plus `h` when `residual` (as in [`Self::attention_node`]). The gate and up projections
    /// are the largest activations a layer keeps (on the 7B anchor shape, 172 of 332 MiB); with
    /// `ops::set_recompute_mlp` (`REFT_RECOMPUTE_MLP=1`) the backward recomputes them from `h`
    /// instead, for two more GEMMs per layer, and with `ops::set_recompute_mlp_up`
    /// (`REFT_RECOMPUTE_MLP=up`, or `up:N` for the top N layers) up's alone, for one.
    pub(super) fn mlp_node(&self, w: &LayerWeights, layer: usize, h: &Tensor, residual: bool) -> Result<Tensor> {
        let eps = self.cfg.rms_norm_eps;
        let hv = h.detach();
        let x = rms_norm(&hv, &w.post_norm, eps)?;
        let proj = Projections::new(w);
        let kept = proj.forward(&x)?;
        drop(x);
        let y = w.down.forward(&kept.swiglu()?)?;
        let y = if residual { (hv + y)? } else { y };
        if !h.track_op() {
            return Ok(y);
        }
        let kept = match crate::ops::recompute_mlp() {
            true => None,
            false if crate::ops::recompute_mlp_up_at(layer, self.layers.len()) => Some(kept.gate_only()?),
            false => Some(kept),
        };
        let (wp, wd) = (w.post_norm.clone(), w.down.weight.clone());
        crate::ops::attach1("mlp-block", h, y, move |h, _y, dy| {
            let kept = match &kept {
                Some(Kept::Gate(a)) => proj.with_up(a.clone(), &rms_norm(h, &wp, eps)?)?,
                Some(k) => k.clone(),
                None => proj.forward(&rms_norm(h, &wp, eps)?)?,
            };
            let dx = proj.input_grad(kept, &frozen_linear_vjp(dy, &wd)?)?;
            Ok(Some(if residual { rms_norm_vjp_add(h, &wp, &dx, eps, dy)? } else { rms_norm_vjp(h, &wp, &dx, eps)? }))
        })
    }
}

/// The MLP's gate and up projections, packed into one GEMM or not.
enum Projections {
    Separate(FrozenLinear, FrozenLinear),
    Packed(FrozenLinear, usize),
}

/// What the MLP node keeps of them: the gate's and up's outputs, the packed rows of both, or
/// the gate's alone (`ops::recompute_mlp_up`).
#[derive(Clone)]
enum Kept {
    Separate(Tensor, Tensor),
    Packed(Tensor, usize),
    Gate(Tensor),
}

impl Projections {
    fn new(w: &LayerWeights) -> Self {
        match &w.packed {
            Some(p) => Projections::Packed(p.gate_up.clone(), w.gate.out_dim()),
            None => Projections::Separate(w.gate.clone(), w.up.clone()),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Kept> {
        Ok(match self {
            Projections::Separate(gate, up) => Kept::Separate(gate.forward(x)?, up.forward(x)?),
            Projections::Packed(gate_up, f) => Kept::Packed(gate_up.forward(x)?, *f),
        })
    }

    /// The kept projections from the gate's output `a` kept and up's recomputed from `x`.
    fn with_up(&self, a: Tensor, x: &Tensor) -> Result<Kept> {
        Ok(match self {
            Projections::Separate(_, up) => Kept::Separate(a, up.forward(x)?),
            Projections::Packed(gate_up, f) => {
                let rows = |t: &Tensor| t.narrow(0, *f, *f);
                let up = FrozenLinear { weight: rows(&gate_up.weight)?, bias: gate_up.bias.as_ref().map(rows).transpose()? };
                let u = up.forward(x)?;
                Kept::Packed(Tensor::cat(&[&a, &u], u.rank() - 1)?, *f)
            }
        })
    }

    /// `∂L/∂x` from the kept projections and the gradient `ds` of `swiglu`'s output.
    fn input_grad(&self, kept: Kept, ds: &Tensor) -> Result<Tensor> {
        match (self, kept) {
            (Projections::Separate(gate, up), Kept::Separate(a, u)) => {
                let (da, du) = swiglu_vjp(&a, &u, ds)?;
                drop((a, u));
                frozen_linear_vjp(&da, &gate.weight)? + frozen_linear_vjp(&du, &up.weight)?
            }
            (Projections::Packed(gate_up, _), Kept::Packed(au, f)) => {
                let d = swiglu_packed_vjp(&au, ds, f)?;
                drop(au);
                frozen_linear_vjp(&d, &gate_up.weight)
            }
            _ => candle_core::bail!("mlp-block: kept projections of the other layout"),
        }
    }
}

impl Kept {
    fn swiglu(&self) -> Result<Tensor> {
        match self {
            Kept::Separate(a, u) => swiglu(a, u),
            Kept::Packed(au, f) => swiglu_packed(au, *f),
            Kept::Gate(_) => candle_core::bail!("mlp-block: up's output is not kept"),
        }
    }

    /// The gate's output alone (a copy out of the packed rows, so that up's half is freed).
    fn gate_only(self) -> Result<Kept> {
        Ok(Kept::Gate(match self {
            Kept::Separate(a, _) => a,
            Kept::Packed(au, f) => au.narrow(au.rank() - 1, 0, f)?.contiguous()?,
            Kept::Gate(a) => a,
        }))
    }
}
