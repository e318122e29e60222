//! Packed projections (`models/packed.rs`, `ops/packed.rs`): a decoder whose q/k/v and gate/up
//! weights are packed into one matrix each gives what the same decoder unpacked gives — logits
//! and generated tokens through the inference forward (one GEMM and one split per group), loss
//! and every intervention gradient through the block nodes (one GEMM from the packed rows'
//! gradient) against the op-by-op graph on separate weights. Grouped-query heads, projection
//! biases, the frozen window, recomputation and pending edits are all covered.
//!
//! One test function: the block-node switch is process-wide.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use reft_core::generate::GenerateOptions;
use reft_core::interventions::Kind;
use reft_core::models::{Backbone, Component, Decoder, Model};
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

/// The tiny decoder (`layers` layers, seed 7), with random q/k/v biases when `biased`.
fn decoder(dtype: DType, layers: usize, biased: bool) -> Decoder {
    let mut cfg = reft_core::testing::tiny_config();
    cfg.num_layers = layers;
    let mut dec = reft_core::testing::tiny_decoder(&cfg, dtype, 7).unwrap();
    if biased {
        for (i, l) in dec.layers.iter_mut().enumerate() {
            for (j, p) in [&mut l.q, &mut l.k, &mut l.v].into_iter().enumerate() {
                let n = p.out_dim();
                let v: Vec<f64> = (0..n).map(|e| ((e * 7 + i * 3 + j * 5) % 11) as f64 / 20.0 - 0.25).collect();
                p.bias = Some(Tensor::from_vec(v, n, &Device::Cpu).unwrap().to_dtype(dtype).unwrap());
            }
        }
    }
    dec
}

fn wrap(dec: Decoder) -> Arc<Model> {
    Arc::new(Model { backbone: Backbone::Decoder(dec), tokenizer: None, source: "test" })
}

/// The same decoder unpacked and packed.
fn pair(dtype: DType, layers: usize, biased: bool) -> (Arc<Model>, Arc<Model>) {
    let mut packed = decoder(dtype, layers, biased);
    packed.pack_projections().unwrap();
    assert!(packed.layers.iter().all(|l| l.packed.is_some()));
    (wrap(decoder(dtype, layers, biased)), wrap(packed))
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// Largest difference relative to the largest magnitude of `a`.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn packed_decoders_match_unpacked_ones() {
    inference();
    gradients();
}

fn inference() {
    let sites = [(Kind::Loreft, 0, Component::BlockOutput), (Kind::Direft, 1, Component::BlockInput)];
    let specs: Vec<_> = sites.iter().map(|&(k, l, c)| spec(k, l, c)).collect();
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
        // Inference, op by op and with the block nodes: layer 0 runs without a graph.
        for block in [false, true] {
            reft_core::ops::set_block_ops(block);
            let (plain, packed) = pair(dtype, 2, true);
            let (a, b) = (ReftModel::new(plain, &specs, 3).unwrap(), ReftModel::new(packed, &specs, 3).unwrap());
            let (oa, ob) = (a.forward(&batch(2), true).unwrap(), b.forward(&batch(2), true).unwrap());
            let d = rel(&flat(oa.logits.as_ref().unwrap()), &flat(ob.logits.as_ref().unwrap()));
            assert!(d <= tol, "{dtype:?} block={block}: logits rel {d:.2e}");
            assert!((oa.loss.unwrap() - ob.loss.unwrap()).abs() <= tol * oa.loss.unwrap().abs());
            // Generation: the prompt's forward, then decoding steps on the KV cache.
            let mut prompt = batch(2);
            prompt.labels = None;
            let o = GenerateOptions { max_new_tokens: 6, ..Default::default() };
            let ga = a.generate(&prompt, &o, &mut |_| true).unwrap();
            assert_eq!(ga, b.generate(&prompt, &o, &mut |_| true).unwrap(), "{dtype:?} block={block}: generated tokens");
        }
    }
    reft_core::ops::set_block_ops(false);
}

/// Loss and gradients of `m`.
fn grads(m: &ReftModel, b: &Batch, block: bool, recompute: bool) -> (f64, Vec<f64>) {
    reft_core::ops::set_block_ops(block);
    let (loss, _, g) = m.gradients_with(std::slice::from_ref(b), recompute).unwrap();
    (loss, g.iter().flat_map(flat).collect())
}

/// The op-by-op graph on the unpacked decoder against the block nodes on the packed one.
fn check(name: &str, dtype: DType, layers: usize, biased: bool, sites: &[(Kind, usize, Component)], b: &Batch, recompute: bool) {
    let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
    let specs: Vec<_> = sites.iter().map(|&(k, l, c)| spec(k, l, c)).collect();
    let (plain, packed) = pair(dtype, layers, biased);
    let (a, p) = (ReftModel::new(plain, &specs, 5).unwrap(), ReftModel::new(packed, &specs, 5).unwrap());
    let (la, ga) = grads(&a, b, false, false);
    let (lp, gp) = grads(&p, b, true, recompute);
    assert!(ga.iter().any(|x| x.abs() > 1e-8), "{name}: gradients are all zero");
    let (dl, dg) = ((la - lp).abs() / la.abs(), rel(&ga, &gp));
    println!("{name} {dtype:?}: loss rel {dl:.1e}, gradients rel {dg:.1e}");
    assert!(dl <= tol && dg <= tol, "{name} {dtype:?}: loss rel {dl:.2e}, gradients rel {dg:.2e}");
}

fn gradients() {
    let two = [(Kind::Loreft, 0, Component::BlockOutput), (Kind::Loreft, 1, Component::BlockOutput)];
    let sites = [(Kind::Direft, 0, Component::AttentionOutput), (Kind::Loreft, 1, Component::BlockInput), (Kind::Noreft, 1, Component::MlpOutput)];
    let three: Vec<_> = (0..3).map(|l| (Kind::Loreft, l, Component::BlockOutput)).collect();
    for dtype in [DType::F64, DType::F32] {
        check("both block outputs", dtype, 2, false, &two, &batch(2), false);
        check("every site, biased", dtype, 2, true, &sites, &batch(3), false);
        check("pending edits", dtype, 3, false, &three, &batch(3), false);
        check("recomputation", dtype, 2, false, &two, &batch(2), true);
        let mut late = batch(2);
        late.positions = Some(late.positions.unwrap().iter().map(|p| p % 3 + 3).collect());
        check("frozen window", dtype, 2, false, &two, &late, false);
        reft_core::ops::set_recompute_mlp(true);
        check("MLP projections recomputed", dtype, 2, false, &sites, &batch(3), false);
        reft_core::ops::set_recompute_mlp(false);
        reft_core::ops::set_recompute_mlp_up(true);
        check("up projection recomputed", dtype, 2, true, &sites, &batch(3), false);
        reft_core::ops::set_recompute_mlp_up(false);
    }
    reft_core::ops::set_block_ops(false);
}
