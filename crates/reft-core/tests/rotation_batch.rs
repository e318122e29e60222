//! The rotations of all interventions computed as one batch per forward
//! (`interventions/rotation_batch.rs`, the GPU's default) against each intervention computing its
//! own: the same loss and the same gradient for every parameter, in f64 and f32, with four
//! rotation kinds, two ranks (two batches), parameters away from their initial value, and
//! recomputation (which does not batch).
//!
//! One test function: the switches are process-wide. On the CPU the rotation's map is the host
//! op unless `REFT_ROTATION=graph`, set here before anything reads it.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use reft_core::interventions::{set_rotation_batch, Activation, InterventionSpec, Kind};
use reft_core::models::Component;
use reft_core::ReftModel;

fn grads(m: &ReftModel, batched: bool, recompute: bool) -> (f64, Vec<Vec<f64>>) {
    set_rotation_batch(batched);
    let (loss, _, g) = m.gradients_with(std::slice::from_ref(&batch(6)), recompute).unwrap();
    let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    (loss, g.iter().map(flat).collect())
}

#[test]
fn batched_rotations_match_each_interventions_own() {
    std::env::set_var("REFT_ROTATION", "graph");
    let sites = [
        (Kind::Loreft, 0, Component::BlockOutput, 3),
        (Kind::Loreft, 1, Component::BlockOutput, 3),
        (Kind::Consreft, 1, Component::MlpOutput, 3),
        (Kind::DireftOrth, 0, Component::AttentionOutput, 3),
        (Kind::Lobireft, 1, Component::BlockInput, 4),
        (Kind::Loreft, 0, Component::BlockInput, 4),
    ];
    let specs: Vec<_> = sites
        .iter()
        .map(|&(kind, layer, component, rank)| InterventionSpec { kind, layer, component, rank, dropout: 0.0, activation: Activation::Linear, add_bias: true })
        .collect();
    for dtype in [DType::F64, DType::F32] {
        let mut m = ReftModel::new(model(dtype), &specs, 5).unwrap();
        for (i, iv) in m.interventions.iter_mut().enumerate() {
            let rot = iv.rotation_mut().expect("every kind here has a rotation");
            let (d, r) = rot.a.dims2().unwrap();
            let a = (Tensor::randn(0f32, 0.3, (d, r), &candle_core::Device::Cpu).unwrap() * (1.0 + i as f64 / 10.0)).unwrap();
            rot.a.set(&a).unwrap();
        }
        let tol = if dtype == DType::F64 { 1e-12 } else { 2e-6 };
        let (l_own, g_own) = grads(&m, false, false);
        assert!(g_own.iter().flatten().any(|x| x.abs() > 1e-8), "gradients are all zero");
        for (name, recompute) in [("batched", false), ("recomputed", true)] {
            let (l, g) = grads(&m, true, recompute);
            let scale = g_own.iter().flatten().fold(0f64, |a, x| a.max(x.abs()));
            let dg = g_own.iter().flatten().zip(g.iter().flatten()).fold(0f64, |a, (x, y)| a.max((x - y).abs())) / scale;
            let dl = (l - l_own).abs() / l_own.abs();
            println!("{dtype:?} {name}: loss rel {dl:.1e}, gradients rel {dg:.1e}");
            assert!(dl <= tol && dg <= tol, "{dtype:?} {name}: loss rel {dl:.2e}, gradients rel {dg:.2e}");
        }
    }
}
