//! Finite-difference gradient checks in f64: every intervention kind at every component, through
//! the whole model (so the custom ops — frozen linear, RMSNorm, softmax, RoPE, attention with
//! masks, log-softmax loss, gather/scatter of positions — are all on the path).

mod common;

use candle_core::{DType, Tensor};
use common::*;
use reft_core::models::Component;

fn loss(m: &reft_core::ReftModel, b: &reft_core::Batch) -> f64 {
    m.forward(b, false).unwrap().loss.unwrap()
}

/// Central differences on a few entries of every parameter against the analytic gradient.
fn check(m: &reft_core::ReftModel, b: &reft_core::Batch, label: &str) {
    let (_, _, grads) = m.gradients(std::slice::from_ref(b)).unwrap();
    let params = m.named_params();
    let eps = 1e-4;
    for ((name, var), g) in params.iter().zip(&grads) {
        let orig = var.as_tensor().detach().copy().unwrap();
        let flat: Vec<f32> = orig.flatten_all().unwrap().to_vec1().unwrap();
        let gflat: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let n = flat.len();
        let gnorm = gflat.iter().map(|x| (*x as f64).abs()).fold(0.0, f64::max);
        for &k in &[0, n / 3, n / 2, n - 1] {
            // The rotation parameter only uses its strictly-lower triangle; pick entries there.
            let k = if name.ends_with("rotation.a") { n - 1 - (k % (n / 2)) } else { k };
            let mut plus = flat.clone();
            plus[k] += eps as f32;
            var.set(&Tensor::from_vec(plus, orig.shape(), orig.device()).unwrap()).unwrap();
            let lp = loss(m, b);
            let mut minus = flat.clone();
            minus[k] -= eps as f32;
            var.set(&Tensor::from_vec(minus, orig.shape(), orig.device()).unwrap()).unwrap();
            let lm = loss(m, b);
            var.set(&orig).unwrap();
            // Divide by the step actually taken: f32 parameters round x ± eps.
            let step = (flat[k] + eps as f32) as f64 - (flat[k] - eps as f32) as f64;
            let fd = (lp - lm) / step;
            let an = gflat[k] as f64;
            let tol = 1e-4 * gnorm.max(1e-3) + 1e-4 * fd.abs();
            assert!((fd - an).abs() <= tol, "{label} {name}[{k}]: finite difference {fd:e} vs analytic {an:e}");
        }
        assert!(gnorm > 0.0, "{label} {name}: gradient is identically zero");
    }
}

#[test]
fn every_kind_at_block_output() {
    for kind in ALL_KINDS {
        let m = reft(&[(kind, 0, Component::BlockOutput)], DType::F64, 1);
        check(&m, &batch(1), &format!("{kind:?}"));
    }
}

#[test]
fn every_component_and_stacked_interventions() {
    use reft_core::interventions::Kind::*;
    for comp in [Component::BlockInput, Component::AttentionOutput, Component::MlpOutput] {
        let m = reft(&[(Loreft, 1, comp)], DType::F64, 2);
        check(&m, &batch(1), &format!("{comp:?}"));
    }
    // Two interventions on the same site apply in order; a third on another layer.
    let m = reft(&[(Loreft, 0, Component::BlockOutput), (Direft, 1, Component::BlockOutput), (Noreft, 0, Component::BlockOutput)], DType::F64, 3);
    check(&m, &batch(3), "stacked");
}
