//! Half precision (bf16, f16) against f32, on the CPU: the numerics targets of the GPU work
//! (issue 6), checked where CI runs. The same network in bf16 gives logits within bf16 rounding
//! of the f32 ones, and a short training run follows the f32 loss curve. Intervention parameters
//! stay f32 in every dtype; the interventions themselves run in f32 on the gathered rows.
//!
//! On the CPU, half precision is a correctness mirror of the GPU path, not a speed-up: candle has
//! no bf16 GEMM kernel there and widens to f32.

mod common;

use candle_core::DType;
use common::*;
use reft_core::default_model::default_model_path;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{load_model, Component, LoadOptions};
use reft_core::train::StepOptions;
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

fn logits_f32(m: &ReftModel, b: &Batch) -> Vec<f32> {
    let out = m.forward(b, true).unwrap();
    out.logits.unwrap().to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// `‖a − b‖ / ‖a‖`.
fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    (num / den).sqrt()
}

fn argmax(x: &[f32]) -> usize {
    x.iter().enumerate().fold((0, f32::MIN), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

/// Losses of `steps` AdamW steps on one batch.
fn curve(m: &mut ReftModel, b: &Batch, steps: usize, lr: f64) -> Vec<f64> {
    let opts = StepOptions { lr, ..Default::default() };
    (0..steps).map(|_| m.train_step(std::slice::from_ref(b), &opts).unwrap().loss).collect()
}

fn worst_rel(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / x.abs()).fold(0.0, f64::max)
}

#[test]
fn half_precision_tracks_f32_for_every_intervention_kind() {
    // bf16 keeps 8 bits of mantissa (relative rounding 2⁻⁹ ≈ 0.2%), f16 11 bits (2⁻¹² ≈ 0.02%).
    // Through two layers of the tiny model the logits move by a few roundings.
    for (dt, logit_tol, loss_tol) in [(DType::BF16, 2e-2, 5e-3), (DType::F16, 3e-3, 1e-3)] {
        let kinds: Vec<_> = ALL_KINDS.iter().enumerate().map(|(i, &k)| (k, i % 2, Component::BlockOutput)).collect();
        let mut full = reft(&kinds, DType::F32, 3);
        let mut half = reft(&kinds, dt, 3);
        for (name, v) in half.named_params() {
            assert_eq!(v.dtype(), DType::F32, "{dt:?} model: parameter {name} is {:?}", v.dtype());
        }
        let b = batch(kinds.len());
        let (lf, lh) = (logits_f32(&full, &b), logits_f32(&half, &b));
        let r = rel_l2(&lf, &lh);
        assert!(r > 0.0, "{dt:?}: logits identical to f32, so the model did not run in {dt:?}");
        assert!(r < logit_tol, "{dt:?}: logits differ from f32 by {r:.3e} (relative L2)");
        let (cf, ch) = (curve(&mut full, &b, 8, 1e-2), curve(&mut half, &b, 8, 1e-2));
        assert!(ch[7] < 0.7 * ch[0], "{dt:?}: loss did not fall: {ch:?}");
        let w = worst_rel(&cf, &ch);
        assert!(w < loss_tol, "{dt:?}: loss curve {ch:?} vs f32 {cf:?} (worst relative {w:.2e})");
    }
}

/// The flattened gradient of every parameter at the model's current point.
fn flat_grad(m: &ReftModel, b: &Batch) -> Vec<f64> {
    let (_, _, grads) = m.gradients(std::slice::from_ref(b)).unwrap();
    grads.iter().flat_map(|g| g.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Calibration, measured on this machine with transformers 5.17 (`benches/hf_bf16_logits.py`):
/// the same GGUF in PyTorch bf16 against PyTorch f32, on these four chat rows, gives logits
/// relative L2 0.025 and the same argmax on 196 of 206 tokens (95%); reft's bf16 measured
/// 0.026 and the same 196 of 206, with a gradient cosine of 0.9992 to its f32 gradient, and
/// 0.996 after 8 steps of training (the gradient is smaller there, its rounding relatively
/// larger; the primitive composites measured the same before the lean ops of `ops/attach.rs`).
///
/// Loss curves are checked at the same parameters, not along two free runs: after 8 AdamW steps
/// two runs drift apart by 3–12% in bf16 (and by 2–3% in f16, whose logits are 8× closer to
/// f32; f64 stays within 0.2% of f32), because Adam's normalised steps amplify any rounding. So
/// the f32 run's trained parameters are loaded into the bf16 model, and its loss and gradient
/// there must match; the free bf16 run only has to learn.
#[test]
#[ignore = "needs the default model (npm run fetch-model); CI runs it with --ignored"]
fn smollm2_bf16_matches_f32_logits_gradients_and_loss_curve() {
    let path = default_model_path();
    assert!(path.exists(), "default model missing at {} — run `npm run fetch-model`", path.display());
    let model = |dtype: DType| -> (ReftModel, Batch) {
        let base = Arc::new(load_model(&path, &LoadOptions { dtype, ..Default::default() }).unwrap());
        let tok = base.tokenizer.as_ref().unwrap();
        let rows = emoji_rows(tok);
        let mut b = Batch::last_position_supervised(&rows, 0);
        b.positions = b.positions.map(|p| p.repeat(30)); // the same position for every layer
        // LoReFT rank 4 on every layer at the last prompt position: all 30 layers' rounding
        // reaches the loss, and every intervention is trained.
        let specs: Vec<_> = (0..30)
            .map(|layer| InterventionSpec { kind: Kind::Loreft, layer, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: false })
            .collect();
        (ReftModel::new(base, &specs, 42).unwrap(), b)
    };
    let (mut full, b) = model(DType::F32);
    let (mut half, _) = model(DType::BF16);

    // 1. Logits of real tokens (the batch is right-padded), at the initial parameters.
    let (lf, lh) = (logits_f32(&full, &b), logits_f32(&half, &b));
    let v = lf.len() / (b.batch_size * b.seq_len);
    let real: Vec<usize> = (0..b.batch_size * b.seq_len).filter(|&i| b.attention_mask.as_ref().map(|m| m[i] == 1).unwrap_or(true)).collect();
    let pick = |l: &[f32]| -> Vec<f32> { real.iter().flat_map(|&i| l[i * v..(i + 1) * v].to_vec()).collect() };
    let (lf, lh) = (pick(&lf), pick(&lh));
    let r = rel_l2(&lf, &lh);
    let agree = lf.chunks(v).zip(lh.chunks(v)).filter(|(x, y)| argmax(x) == argmax(y)).count();
    let n = real.len();
    println!("bf16 vs f32: logits relative L2 {r:.4}, argmax agrees on {agree}/{n} tokens");
    assert!(r > 0.0 && r < 0.035, "logits relative L2 {r} (PyTorch's own bf16: 0.025)");
    assert!(agree as f64 >= 0.93 * n as f64, "argmax agrees on {agree}/{n} (PyTorch's own bf16: 95%)");

    // 2. Gradients at the initial parameters and 3. after 8 steps of f32 training, loaded into
    // the bf16 model: the same direction and size, and the same loss there.
    let norm = |g: &[f64]| g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let compare = |full: &ReftModel, half: &ReftModel, when: &str| {
        let (gf, gh) = (flat_grad(full, &b), flat_grad(half, &b));
        let cos = cosine(&gf, &gh);
        let dn = (norm(&gh) / norm(&gf) - 1.0).abs();
        let (xf, xh) = (full.forward(&b, false).unwrap().loss.unwrap(), half.forward(&b, false).unwrap().loss.unwrap());
        println!("{when}: loss f32 {xf:.5} bf16 {xh:.5}; gradient cosine {cos:.5}, norm differs by {:.2}%", dn * 100.0);
        let (cmin, nmax) = if when == "initial" { (0.999, 0.01) } else { (0.99, 0.02) };
        assert!(cos > cmin && dn < nmax, "{when}: gradient cosine {cos}, norm ratio off by {dn}");
        assert!((xh - xf).abs() < 0.01 * xf, "{when}: loss {xh} vs f32 {xf}");
    };
    compare(&full, &half, "initial");
    let start = half.named_params().iter().map(|(_, v)| v.as_tensor().copy().unwrap()).collect::<Vec<_>>();
    let cf = curve(&mut full, &b, 8, 2e-3);
    for ((_, dst), (_, src)) in half.named_params().iter().zip(full.named_params()) {
        dst.set(src.as_tensor()).unwrap();
    }
    compare(&full, &half, "after 8 f32 steps");

    // 4. A free bf16 run from the same start learns as the f32 one does.
    for ((_, dst), t) in half.named_params().iter().zip(&start) {
        dst.set(t).unwrap();
    }
    let ch = curve(&mut half, &b, 8, 2e-3);
    println!("f32 losses  {cf:?}\nbf16 losses {ch:?} (worst relative {:.3})", worst_rel(&cf, &ch));
    assert!((ch[0] - cf[0]).abs() < 0.01 * cf[0], "first step loss {} vs {}", ch[0], cf[0]);
    assert!(cf[7] < 0.6 * cf[0] && ch[7] < 0.6 * ch[0], "both runs learn: f32 {cf:?}, bf16 {ch:?}");
}
