//! The block-level graph nodes of the Llama decoder (`models/llama_block.rs`: a layer's
//! attention and its MLP as one node each, with a written backward) against the op-by-op graph
//! (`ops::set_block_ops(false)`): the same loss and the same gradient for every intervention
//! parameter, in f64 (to 1e-10) and f32, with grouped-query attention, projection biases,
//! interventions at every site, an edit left pending for the next layer's node, the frozen
//! causal window (cached keys), recomputation, the attention probabilities kept instead of
//! recomputed, and the MLP projections (or up's alone) recomputed instead of kept.
//!
//! One test function: the switch is process-wide, so the cases run in sequence.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use reft_core::interventions::Kind;
use reft_core::models::{Backbone, Component, Model};
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

/// The loss and every gradient, flattened, with the block nodes on or off.
fn grads(m: &ReftModel, b: &Batch, block: bool, recompute: bool) -> (f64, Vec<Vec<f64>>) {
    reft_core::ops::set_block_ops(block);
    let (loss, _, g) = m.gradients_with(std::slice::from_ref(b), recompute).unwrap();
    let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    (loss, g.iter().map(flat).collect())
}

/// Largest difference relative to the largest magnitude, over all gradients.
fn rel_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let scale = a.iter().flatten().fold(0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.iter().flatten().zip(b.iter().flatten()).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check(name: &str, m: &ReftModel, b: &Batch, tol: f64, recompute: bool) {
    let (l_op, g_op) = grads(m, b, false, false);
    let (l_blk, g_blk) = grads(m, b, true, recompute);
    assert_eq!(g_op.len(), g_blk.len());
    assert!(g_op.iter().flatten().any(|x| x.abs() > 1e-8), "{name}: gradients are all zero");
    let dl = (l_op - l_blk).abs() / l_op.abs();
    let dg = rel_diff(&g_op, &g_blk);
    println!("{name}: loss {l_op} vs {l_blk} (rel {dl:.1e}), gradients rel {dg:.1e}");
    assert!(dl <= tol && dg <= tol, "{name}: loss rel {dl:.2e}, gradients rel {dg:.2e} (tolerance {tol:.0e})");
}

/// The tiny decoder with random biases on the query, key and value projections (Qwen2's).
fn biased(dtype: DType) -> Arc<Model> {
    let mut dec = reft_core::testing::tiny_decoder(&reft_core::testing::tiny_config(), dtype, 7).unwrap();
    for (i, l) in dec.layers.iter_mut().enumerate() {
        for (j, p) in [&mut l.q, &mut l.k, &mut l.v].into_iter().enumerate() {
            let n = p.out_dim();
            let v: Vec<f64> = (0..n).map(|e| ((e * 7 + i * 3 + j * 5) % 11) as f64 / 20.0 - 0.25).collect();
            p.bias = Some(Tensor::from_vec(v, n, &candle_core::Device::Cpu).unwrap().to_dtype(dtype).unwrap());
        }
    }
    Arc::new(Model { backbone: Backbone::Decoder(dec), tokenizer: None, source: "test" })
}

#[test]
fn block_nodes_match_the_op_by_op_graph() {
    let loreft2 = [(Kind::Loreft, 0, Component::BlockOutput), (Kind::Loreft, 1, Component::BlockOutput)];
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
        let m = reft(&loreft2, dtype, 3);
        check(&format!("{dtype:?} loreft on both block outputs"), &m, &batch(2), tol, false);
        let sites = [
            (Kind::Direft, 0, Component::AttentionOutput),
            (Kind::Loreft, 1, Component::BlockInput),
            (Kind::Noreft, 1, Component::MlpOutput),
        ];
        check(&format!("{dtype:?} every site"), &reft(&sites, dtype, 4), &batch(3), tol, false);
        // Positions from 3 on and labels from 4 on: positions 0..3 are frozen (cached keys).
        let mut late = batch(2);
        late.positions = Some(late.positions.unwrap().iter().map(|p| p % 3 + 3).collect());
        let m = reft(&loreft2, dtype, 5);
        assert!(m.frozen_positions(&late) > 0, "the case must exercise the frozen window");
        check(&format!("{dtype:?} frozen window"), &m, &late, tol, false);
        let specs: Vec<_> = loreft2.iter().map(|&(k, l, c)| spec(k, l, c)).collect();
        let m = ReftModel::new(biased(dtype), &specs, 6).unwrap();
        check(&format!("{dtype:?} biased projections"), &m, &batch(2), tol, false);
        check(&format!("{dtype:?} recomputation"), &reft(&loreft2, dtype, 3), &batch(2), tol, true);
        // Three layers: layer 1's output edit is left pending and applied by layer 2's attention
        // node (with two, layer 0 runs without a graph and its edit is applied at once).
        let mut cfg = reft_core::testing::tiny_config();
        cfg.num_layers = 3;
        let dec = reft_core::testing::tiny_decoder(&cfg, dtype, 9).unwrap();
        let three = Arc::new(Model { backbone: Backbone::Decoder(dec), tokenizer: None, source: "test" });
        let specs: Vec<_> = (0..3).map(|l| spec(Kind::Loreft, l, Component::BlockOutput)).collect();
        check(&format!("{dtype:?} pending edits"), &ReftModel::new(three, &specs, 8).unwrap(), &batch(3), tol, false);
        reft_core::ops::set_keep_attention_probs(true);
        check(&format!("{dtype:?} probabilities kept"), &reft(&sites, dtype, 4), &batch(3), tol, false);
        reft_core::ops::set_keep_attention_probs(false);
        reft_core::ops::set_recompute_mlp(true);
        check(&format!("{dtype:?} MLP projections recomputed"), &reft(&sites, dtype, 4), &batch(3), tol, false);
        reft_core::ops::set_recompute_mlp(false);
        reft_core::ops::set_recompute_mlp_up(true);
        check(&format!("{dtype:?} up projection recomputed"), &reft(&sites, dtype, 4), &batch(3), tol, false);
        reft_core::ops::set_recompute_mlp_up_layers(1);
        check(&format!("{dtype:?} up projection recomputed on the top layer"), &reft(&sites, dtype, 4), &batch(3), tol, false);
        reft_core::ops::set_recompute_mlp_up(false);
    }
}
