//! What a training step keeps alive between its forward and its backward, counted exactly.
//!
//! A counting global allocator sees every CPU tensor's storage, so the bytes live after the
//! loss graph is built, minus those live before it, are the activations the graph keeps. The
//! difference between a 4-layer and a 2-layer model is two layers' worth. The block-level graph
//! nodes (`models/llama_block.rs`, CUDA's default) keep the same tensors on every device, so
//! this is the GPU's activation memory too, in units of one `[tokens, hidden]` activation.
//!
//! The budget asserted below is what the backward needs per layer with LoReFT on the block
//! output: the attention node's input, its rotated queries and keys and its values, the MLP
//! node's input, its gate and up projections, plus the gathered intervention rows. Anything
//! more (an output kept by a residual add, a hidden state kept by an intervention's scatter)
//! fails it. With `ops::set_recompute_mlp` the gate and up projections go too (with
//! `set_recompute_mlp_up_layers(n)` up's on the top n layers alone); packed
//! projections keep the same.

mod common;

use candle_core::DType;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{Backbone, Component, Model};
use reft_core::{Batch, ReftModel};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TOKENS: (usize, usize) = (4, 64);

fn model(layers: usize) -> Arc<Model> {
    let mut cfg = reft_core::testing::tiny_config();
    cfg.hidden_size = 256;
    cfg.intermediate_size = 704;
    cfg.num_heads = 4;
    cfg.num_kv_heads = 2;
    cfg.head_dim = 64;
    cfg.num_layers = layers;
    let dec = reft_core::testing::tiny_decoder(&cfg, DType::F32, 11).unwrap();
    Arc::new(Model { backbone: Backbone::Decoder(dec), tokenizer: None, source: "test" })
}

/// First 3 and last 3 positions of each row, labels on the last 8 tokens.
fn batch(layers: usize) -> Batch {
    let (b, t) = TOKENS;
    let ids: Vec<u32> = (0..b * t).map(|i| ((i * 37 + 11) % 250) as u32).collect();
    let labels: Vec<i64> = ids.iter().enumerate().map(|(i, &x)| if i % t >= t - 8 { x as i64 } else { -100 }).collect();
    let row = [0i64, 1, 2, (t - 3) as i64, (t - 2) as i64, (t - 1) as i64];
    let positions: Vec<i64> = (0..layers * b).flat_map(|_| row).collect();
    Batch { input_ids: ids, batch_size: b, seq_len: t, positions: Some(positions), num_positions: 6, labels: Some(labels), ..Default::default() }
}

/// Bytes the loss graph keeps, and the peak above the starting point during the backward.
fn kept(layers: usize) -> (usize, usize) {
    let specs: Vec<_> = (0..layers)
        .map(|l| InterventionSpec { kind: Kind::Loreft, layer: l, component: Component::BlockOutput, rank: 8, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let m = ReftModel::new(model(layers), &specs, 3).unwrap();
    let b = batch(layers);
    let before = LIVE.load(Relaxed);
    let loss = m.loss_graph(&b).unwrap();
    let after = LIVE.load(Relaxed);
    PEAK.store(after, Relaxed);
    let grads = loss.backward().unwrap();
    let peak = PEAK.load(Relaxed);
    drop((grads, loss));
    (after - before, peak - before)
}

#[test]
fn a_layer_keeps_only_what_its_backward_needs() {
    reft_core::ops::set_block_ops(true);
    // The first step allocates scratch that stays (thread pools, GEMM workspaces): not counted.
    kept(2);
    let (k2, p2) = kept(2);
    let (k4, p4) = kept(4);
    let (b, t) = TOKENS;
    let unit = (b * t * 256 * 4) as f64; // one [tokens, hidden] f32 activation
    let per_layer = (k4 as f64 - k2 as f64) / 2.0 / unit;
    let peak_per_layer = (p4 as f64 - p2 as f64) / 2.0 / unit;
    println!("kept: {k2} B (2 layers), {k4} B (4 layers); {per_layer:.2} activations per layer");
    println!("backward peak: {p2} B, {p4} B; {peak_per_layer:.2} activations per layer");
    // h (1) + q (1) + k, v (0.5 each: 2 of 4 heads) + h_mid (1) + gate, up (704/256 each),
    // and the intervention's 24 gathered rows with a few row-sized intermediates (0.44
    // measured; 0.5 allowed, half an activation: any further whole activation fails).
    let budget = 1.0 + 1.0 + 0.5 + 0.5 + 1.0 + 2.0 * 704.0 / 256.0 + 0.5;
    assert!(per_layer <= budget, "a layer keeps {per_layer:.2} activations, the backward needs {budget:.2}");
    // With the MLP's projections recomputed in the backward, a layer keeps neither.
    reft_core::ops::set_recompute_mlp(true);
    let (k2, _) = kept(2);
    let (k4, _) = kept(4);
    reft_core::ops::set_recompute_mlp(false);
    let lean = (k4 as f64 - k2 as f64) / 2.0 / unit;
    println!("MLP projections recomputed: {lean:.2} activations per layer");
    let lean_budget = budget - 2.0 * 704.0 / 256.0;
    assert!(lean <= lean_budget, "with the MLP recomputed a layer keeps {lean:.2} activations, expected at most {lean_budget:.2}");
    // With up's projection alone recomputed, a layer keeps the gate's, packed or not.
    for packed in [false, true] {
        reft_core::ops::set_pack_projections(packed);
        reft_core::ops::set_recompute_mlp_up(true);
        let (k2, _) = kept(2);
        let (k4, _) = kept(4);
        reft_core::ops::set_recompute_mlp_up(false);
        let half = (k4 as f64 - k2 as f64) / 2.0 / unit;
        println!("up projection recomputed (packed {packed}): {half:.2} activations per layer");
        let half_budget = budget - 704.0 / 256.0;
        assert!(half <= half_budget, "with up recomputed a layer keeps {half:.2} activations, expected at most {half_budget:.2}");
    }
    reft_core::ops::set_pack_projections(false);
    // Up's projection recomputed on the top 2 of 4 layers only: each of the 2 layers keeps one
    // `[tokens, 704]` f32 projection fewer. Of the two below, layer 1 keeps its projection
    // until all 4 are asked for; layer 0 has no graph (its input is the frozen embedding), so
    // it keeps nothing either way.
    let up_bytes = (b * t * 704 * 4) as f64;
    let mut by_layers = Vec::new();
    for n in [0, 2, 4] {
        reft_core::ops::set_recompute_mlp_up_layers(n);
        by_layers.push(kept(4).0 as f64);
    }
    reft_core::ops::set_recompute_mlp_up_layers(0);
    let (top2, rest) = ((by_layers[0] - by_layers[1]) / up_bytes, (by_layers[1] - by_layers[2]) / up_bytes);
    println!("up projection recomputed on the top 2 of 4 layers: {top2:.3} projections fewer, then {rest:.3} more for all 4");
    assert!((top2 - 2.0).abs() < 0.05 && (rest - 1.0).abs() < 0.05, "up:2 of 4 layers must save 2 projections and leave 1: {top2:.3}, {rest:.3}");
    // Packed projections (`models/packed.rs`, CUDA's default) keep the same tensors, as one
    // buffer for q, k and v and one for gate and up.
    reft_core::ops::set_pack_projections(true);
    let (k2, p2) = kept(2);
    let (k4, p4) = kept(4);
    reft_core::ops::set_pack_projections(false);
    let packed = (k4 as f64 - k2 as f64) / 2.0 / unit;
    println!("packed projections: {packed:.2} activations per layer, backward peak {:.2} per layer", (p4 as f64 - p2 as f64) / 2.0 / unit);
    assert!(packed <= budget, "with packed projections a layer keeps {packed:.2} activations, the backward needs {budget:.2}");
}

