//! Per-layer activation recomputation (gradient checkpointing) for decoder training.
//!
//! A plain backward keeps every layer's intermediate tensors alive from the forward: for
//! SmolLM2 with interventions on all 30 layers that is about 6 GiB at 2 × 512 tokens and more
//! than 23 GiB at 8 × 512. Here the forward runs without a graph and keeps only each layer's
//! input (`[b, t, d]`, 9 MiB per layer at 8 × 512 for SmolLM2). The backward then walks the layers
//! from the top: it reruns layer `l` with a graph from its saved input, back-propagates
//! `sum(out_l · g_{l+1})`, whose gradients are exactly layer `l`'s share of `∂L/∂θ` and `∂L/∂h_l`,
//! and frees that graph before the next layer. Peak memory is one layer's graph; the cost is
//! one more forward pass over the intervened layers.
//!
//! Dropout masks come from one generator per layer (seeded from the step's stream and the
//! layer), so the forward and the rerun draw the same masks. They are not the masks of the
//! plain path, which draws from one generator across layers: with dropout the two paths are
//! equally valid but not bit-identical; without dropout they agree (tests/conformance.rs).

use crate::batch::Batch;
use crate::error::{ReftError, Result};
use crate::reft::ReftModel;
use candle_core::{Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

impl ReftModel {
    /// Loss, token count and gradients of one micro-batch by per-layer recomputation.
    /// `stream` seeds the dropout masks (used in training mode only).
    pub(crate) fn backward_recompute(&self, batch: &Batch, params: &[(String, Var)], stream: u64) -> Result<(f64, usize, Vec<Tensor>)> {
        batch.validate(self.interventions.len(), self.base.vocab_size())?;
        let dec = self.base.decoder()?;
        let w = self.window(batch)?;
        let n_layers = dec.layers.len();
        let input = w.input();
        let layer_rng = |l: usize| StdRng::seed_from_u64(stream ^ (l as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        // The mask and rotary tables once for all 2 × layers runs (made per run, they cost more
        // than the rerun's arithmetic on the 1.1B anchor shape).
        let prep = dec.prepare(&input, if w.kv.is_some() { w.split } else { 0 })?;
        // The interventions' rows once for all runs too (per run, 2 × layers × interventions
        // small uploads a step).
        let rows = self.intervention_rows(batch, w.split)?;
        let run = |l: usize, x: Tensor, track: bool| -> Result<Tensor> {
            let mut rng = layer_rng(l);
            let mut hooks = self.hooks_with(rows.clone(), track, self.training.then_some(&mut rng));
            hooks.batch_rotations = false;
            let mut cache = w.layer_cache(l);
            Ok(dec.run_prepared(&prep, &input, &hooks, cache.as_mut(), l..l + 1, Some(x))?)
        };
        // Forward without a graph, keeping each layer's input.
        let mut h = match &w.h_in {
            Some(h) => h.clone(),
            None => dec.embed_tokens(&w.ids)?,
        };
        let mut inputs = Vec::with_capacity(n_layers - w.lowest);
        for l in w.lowest..n_layers {
            inputs.push(h.clone());
            h = run(l, h, false)?;
        }
        // The loss on the last state, as a leaf: its gradient seeds the walk down.
        let top = Var::from_tensor(&h)?;
        drop(h);
        let (loss, n) = self.loss(top.as_tensor(), batch, w.split, w.top.as_ref())?;
        // The backward is queued before the loss is read: reading it waits for the device, which
        // would otherwise idle while the host walks the graph and launches the backward's first
        // kernels. A non-finite loss still fails the step, after a wasted backward.
        let store = loss.backward()?;
        let value = crate::train::finite_loss(&loss)?;
        let mut g = store.get(top.as_tensor()).ok_or_else(|| ReftError::NoGrad("last hidden state".into()))?.detach();
        drop(store);
        let mut sums: Vec<Option<Tensor>> = vec![None; params.len()];
        for l in (w.lowest..n_layers).rev() {
            // Each saved input is freed once its layer has been rerun.
            let x = Var::from_tensor(&inputs.pop().expect("one input per layer"))?;
            let out = run(l, x.as_tensor().clone(), true)?;
            let store = (out * &g)?.sum_all()?.backward()?;
            for (slot, (_, v)) in sums.iter_mut().zip(params) {
                if let Some(gp) = store.get(v.as_tensor()) {
                    *slot = Some(match slot.take() {
                        Some(acc) => (acc + gp)?,
                        None => gp.detach(),
                    });
                }
            }
            if l > w.lowest {
                g = store.get(x.as_tensor()).ok_or_else(|| ReftError::NoGrad(format!("input of layer {l}")))?.detach();
            }
        }
        let grads = sums
            .into_iter()
            .zip(params)
            .map(|(g, (name, _))| g.ok_or_else(|| ReftError::NoGrad(name.clone())))
            .collect::<Result<Vec<_>>>()?;
        Ok((value, n, grads))
    }
}
