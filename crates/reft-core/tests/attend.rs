//! Attention over the batch in chunks (`ops::attend`, `REFT_ATTN_CHUNK`) is the same
//! function as one call: on the tiny grouped-query decoder with a padded row, the loss and
//! every intervention gradient with one example per call (`REFT_ATTN_CHUNK=1`) equal those of
//! the unchunked run, in f32 and bf16, and so does an encoder's loss.
//! Its own test binary, because the switch is an environment variable.

use candle_core::DType;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::Component;
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

fn batch() -> Batch {
    let (b, t) = (3, 10);
    let ids: Vec<u32> = (0..b * t).map(|i| (i * 13 % 200 + 3) as u32).collect();
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < t / 2 { -100 } else { v as i64 }).collect();
    // Row 1 is left-padded by three tokens, so the mask differs between examples.
    let mask = (0..b * t).map(|i| u8::from(!(i / t == 1 && i % t < 3))).collect();
    let positions = vec![4, 9, 9, 4, 9, 9]; // per layer, per example
    Batch { input_ids: ids, batch_size: b, seq_len: t, attention_mask: Some(mask), positions: Some(positions), num_positions: 1, labels: Some(labels), ..Default::default() }
}

/// Loss and flattened gradients with `REFT_ATTN_CHUNK` set to `chunk` (None: unset).
fn run(dtype: DType, chunk: Option<&str>) -> (f64, Vec<Vec<f32>>) {
    match chunk {
        Some(c) => std::env::set_var("REFT_ATTN_CHUNK", c),
        None => std::env::remove_var("REFT_ATTN_CHUNK"),
    }
    let base = Arc::new(reft_core::testing::tiny_model(dtype, 0).unwrap());
    let specs: Vec<InterventionSpec> = (0..2)
        .map(|layer| InterventionSpec { kind: Kind::Loreft, layer, component: Component::BlockOutput, rank: 2, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let m = ReftModel::new(base, &specs, 0).unwrap();
    let (loss, _, grads) = m.gradients(&[batch()]).unwrap();
    let grads = grads.iter().map(|g| g.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap()).collect();
    (loss, grads)
}

fn max_rel(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let scale = a.iter().flatten().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    a.iter().flatten().zip(b.iter().flatten()).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn chunked_attention_is_the_same_function() {
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::BF16, 1e-5)] {
        let (l0, g0) = run(dtype, None);
        let (l1, g1) = run(dtype, Some("1"));
        assert_eq!(g0.len(), g1.len());
        assert!(g0.iter().flatten().any(|x| *x != 0.0), "{dtype:?}: gradients must not vanish");
        assert!((l0 - l1).abs() <= 1e-6 * l0.abs(), "{dtype:?}: loss {l0} unchunked, {l1} chunked");
        let d = max_rel(&g0, &g1);
        assert!(d <= tol, "{dtype:?}: gradients differ by {d} (relative to their largest)");
    }
    std::env::remove_var("REFT_ATTN_CHUNK");
}
