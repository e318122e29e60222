//! Interventions' edits as one graph node each (`interventions/low_rank.rs`, the default) against
//! the op-by-op graph: the same loss, logits and gradient of every parameter, for LoReFT, DiReFT
//! and orthogonal DiReFT at every component, stacked on one site, next to kinds without a node
//! (NoReFT, a ReLU LoReFT), with dropout on, in f64, f32 and bf16, and through recomputation.
//! `tests/gradcheck.rs` checks the node's gradients against finite differences (the node is on
//! there by default).
//!
//! One test function: the switch is process-wide.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use reft_core::interventions::{set_intervention_nodes, Activation, InterventionSpec, Kind};
use reft_core::models::Component;
use reft_core::ReftModel;

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn run(m: &ReftModel, nodes: bool, recompute: bool) -> (f64, Vec<f64>, Vec<Vec<f64>>) {
    set_intervention_nodes(nodes);
    let b = batch(m.interventions.len());
    let (loss, _, g) = m.gradients_with(std::slice::from_ref(&b), recompute).unwrap();
    let logits = m.forward(&b, true).unwrap().logits.map(|l| flat(&l)).unwrap_or_default();
    (loss, logits, g.iter().map(flat).collect())
}

fn max_rel(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let scale = a.iter().flatten().fold(0f64, |s, x| s.max(x.abs()));
    a.iter().flatten().zip(b.iter().flatten()).fold(0f64, |s, (x, y)| s.max((x - y).abs())) / scale
}

#[test]
fn one_node_edits_match_the_op_by_op_graph() {
    use Component::*;
    use Kind::*;
    let sites = [
        (Loreft, 0, BlockOutput, Activation::Linear),
        (Loreft, 0, BlockOutput, Activation::Linear),
        (Direft, 1, BlockInput, Activation::Linear),
        (DireftOrth, 1, AttentionOutput, Activation::Linear),
        (Loreft, 1, MlpOutput, Activation::Linear),
        (Noreft, 0, MlpOutput, Activation::Linear),
        (Loreft, 1, BlockOutput, Activation::Relu),
    ];
    for dropout in [0.0, 0.2] {
        let specs: Vec<_> = sites
            .iter()
            .map(|&(kind, layer, component, activation)| InterventionSpec { kind, layer, component, rank: 3, dropout, activation, add_bias: true })
            .collect();
        for dtype in [DType::F64, DType::F32, DType::BF16] {
            let mut m = ReftModel::new(model(dtype), &specs, 11).unwrap();
            m.training = dropout > 0.0;
            // Away from the initial rotation, so that every term of the gradient is alive.
            for (i, iv) in m.interventions.iter_mut().enumerate() {
                if let Some(rot) = iv.rotation_mut() {
                    let (d, r) = rot.a.dims2().unwrap();
                    rot.a.set(&(Tensor::randn(0f32, 0.3, (d, r), &Device::Cpu).unwrap() * (1.0 + i as f64 / 7.0)).unwrap()).unwrap();
                }
            }
            // bf16: the node rounds `Φ(h)` once and takes the edit as its difference from `h`; the
            // graph rounds the edit `Φ(h) − h`, and adding it to `h` rounds again. The two differ by
            // bf16 roundings (measured: logits 7e-3, gradients 1e-2 relative, about what either
            // path differs from the same model in f32).
            let tol = match dtype {
                DType::F64 => 1e-12,
                DType::F32 => 5e-6,
                _ => 3e-2,
            };
            // Recomputation draws dropout masks per layer, the graph from one generator: each
            // mode against itself.
            for (name, recompute) in [("graph", false), ("recomputed", true)] {
                let (l0, y0, g0) = run(&m, false, recompute);
                assert!(g0.iter().all(|g| g.iter().any(|x| x.abs() > 1e-9)), "a parameter's gradient is zero");
                let (l, y, g) = run(&m, true, recompute);
                let (dl, dy, dg) = ((l - l0).abs() / l0.abs(), max_rel(&[y0], &[y]), max_rel(&g0, &g));
                println!("{dtype:?} dropout {dropout} {name}: loss {dl:.1e}, logits {dy:.1e}, gradients {dg:.1e}");
                assert!(dl <= tol && dy <= tol && dg <= tol, "{dtype:?} dropout {dropout} {name}: loss {dl:.2e}, logits {dy:.2e}, gradients {dg:.2e}");
            }
        }
    }
    set_intervention_nodes(true);
}
