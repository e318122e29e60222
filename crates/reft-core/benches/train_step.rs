//! Training-step and decoding speed on the embedded default model (SmolLM2-135M-Instruct, CPU,
//! f32). Prints one JSON line per measurement (median of timed repetitions after warm-up), in
//! the same shapes as `benches/pyreft_step.py`, so `benches/compare.sh` can put ratios side by
//! side. Run: `cargo bench -p reft-core --bench train_step` (needs `npm run fetch-model`).

use reft_core::default_model::default_model_path;
use reft_core::generate::GenerateOptions;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{load_model, Component, LoadOptions};
use reft_core::positions::{intervention_locations, PadMode, Positions};
use reft_core::train::StepOptions;
use reft_core::{Batch, ReftModel};
use std::sync::Arc;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median seconds of `steps` timed training steps on one batch.
fn median_step(m: &mut ReftModel, bt: &Batch, opts: &StepOptions, steps: usize) -> f64 {
    median(
        (0..steps)
            .map(|_| {
                let t0 = Instant::now();
                m.train_step(std::slice::from_ref(bt), opts).unwrap();
                t0.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Random tokens (fixed LCG), loss on the second half of each row.
fn batch(b: usize, t: usize, locs: &[Vec<i64>], vocab: usize) -> Batch {
    let ids = reft_core::testing::lcg_token_ids(b * t, vocab, 1);
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < t / 2 { -100 } else { v as i64 }).collect();
    let n = locs[0].len();
    let positions = locs.iter().flat_map(|l| std::iter::repeat(l.clone()).take(b).flatten()).collect();
    Batch { input_ids: ids, batch_size: b, seq_len: t, attention_mask: None, positions: Some(positions), num_positions: n, labels: Some(labels), ..Default::default() }
}

fn main() {
    let path = std::env::var("REFT_BENCH_MODEL").map(Into::into).unwrap_or_else(|_| default_model_path());
    // REFT_BENCH_DEVICE=cuda runs on GPU 0 (CUDA builds only).
    let device = match std::env::var("REFT_BENCH_DEVICE").as_deref() {
        Ok("cuda") => reft_core::cuda_device::new_cuda_device(0).expect("CUDA device"),
        _ => candle_core::Device::Cpu,
    };
    let opts = LoadOptions { device: device.clone(), ..LoadOptions::default() };
    let base = Arc::new(load_model(&path, &opts).expect("run `npm run fetch-model` first"));
    let cfg = base.decoder().unwrap().cfg.clone();
    // REFT_BENCH_CASE=NAME runs one case only and REFT_BENCH_STEPS=N times N steps (profiling).
    let only = std::env::var("REFT_BENCH_CASE").ok();
    let steps = std::env::var("REFT_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(5usize);
    let (b, t) = (4usize, 64usize);
    let prompt = t / 2;
    let cases: [(&str, Vec<usize>, &str, usize); 2] = [
        ("layer15_l1_r4", vec![15], "l1", 4),
        ("all_layers_f7+l7_r8_tied", (0..cfg.num_layers).collect(), "f7+l7", 8),
    ];
    for (name, layers, pos, rank) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let specs: Vec<InterventionSpec> = layers
            .iter()
            .map(|&layer| InterventionSpec { kind: Kind::Loreft, layer, component: Component::BlockOutput, rank, dropout: 0.0, activation: Activation::Linear, add_bias: false })
            .collect();
        let mut m = ReftModel::new(base.clone(), &specs, 0).unwrap();
        let locs = intervention_locations(prompt, Positions::parse(pos).unwrap(), specs.len(), true, PadMode::Last);
        let bt = batch(b, t, &locs, cfg.vocab_size);
        let opts = StepOptions { lr: 1e-3, ..Default::default() };
        m.train_step(std::slice::from_ref(&bt), &opts).unwrap();
        let s = median_step(&mut m, &bt, &opts, steps);
        println!("{{\"impl\":\"reft\",\"device\":\"{device:?}\",\"case\":\"{name}\",\"what\":\"train_step\",\"batch\":{b},\"seq\":{t},\"s_per_step\":{s:.4},\"tokens_per_s\":{:.1},\"trainable\":{}}}", (b * t) as f64 / s, m.num_trainable());
        // The same step with the frozen causal window off (every position in the graph), to
        // show what the window contributes; it only applies when positions start after 0.
        if m.frozen_positions(&bt) > 0 {
            m.frozen_window = false;
            let plain = median_step(&mut m, &bt, &opts, steps);
            m.frozen_window = true;
            // No caches at all (the first epoch's cost: every step recomputes the frozen prefix
            // and the window's keys), frozen window on.
            m.prefix_cache_bytes = 0;
            let cold = median_step(&mut m, &bt, &opts, steps);
            m.prefix_cache_bytes = reft_core::reft::DEFAULT_PREFIX_CACHE_BYTES;
            println!("{{\"impl\":\"reft\",\"case\":\"{name}\",\"what\":\"train_step_no_cache\",\"batch\":{b},\"seq\":{t},\"s_per_step\":{:.4}}}", cold);
            println!("{{\"impl\":\"reft\",\"case\":\"{name}\",\"what\":\"train_step_window_off\",\"batch\":{b},\"seq\":{t},\"s_per_step\":{:.4}}}", plain);
        }
        let fwd: Vec<f64> = (0..steps)
            .map(|_| {
                let t0 = Instant::now();
                m.forward(&bt, false).unwrap();
                t0.elapsed().as_secs_f64()
            })
            .collect();
        println!("{{\"impl\":\"reft\",\"case\":\"{name}\",\"what\":\"forward_loss_no_grad\",\"batch\":{b},\"seq\":{t},\"s\":{:.4}}}", median(fwd));
    }
    // REFT_BENCH_CASE=decode runs only the decoding cases.
    if only.as_deref().is_some_and(|o| o != "decode") {
        return;
    }
    // Decoding: batch 1, 32-token prompt, 64 new tokens, LoReFT at the last prompt position.
    let spec = InterventionSpec { kind: Kind::Loreft, layer: 15, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: false };
    let m = ReftModel::new(base.clone(), &[spec], 0).unwrap();
    let mut p = batch(1, 32, &[vec![31]], cfg.vocab_size);
    p.labels = None;
    for use_cache in [true, false] {
        let o = GenerateOptions { max_new_tokens: 64, use_cache, ..Default::default() };
        m.generate(&p, &GenerateOptions { max_new_tokens: 4, ..o.clone() }, &mut |_| true).unwrap();
        let t0 = Instant::now();
        let out = m.generate(&p, &o, &mut |_| true).unwrap();
        let s = t0.elapsed().as_secs_f64();
        println!("{{\"impl\":\"reft\",\"case\":\"decode_b1_p32_n64\",\"what\":\"generate_cache_{use_cache}\",\"new_tokens\":{},\"tokens_per_s\":{:.1}}}", out[0].len(), out[0].len() as f64 / s);
    }
    // Batched decoding (the CPU analogue of the GPU anchor's generation case): batch 8,
    // 128-token prompts, 32 new tokens each, greedy with the KV cache; new tokens over the batch
    // per second, the same measure as `benches/pyreft_step.py`'s HF and pyreft `generate`.
    let mut p = batch(8, 128, &[vec![127]], cfg.vocab_size);
    p.labels = None;
    let o = GenerateOptions { max_new_tokens: 32, ..Default::default() };
    m.generate(&p, &GenerateOptions { max_new_tokens: 2, ..o.clone() }, &mut |_| true).unwrap();
    let t0 = Instant::now();
    let out = m.generate(&p, &o, &mut |_| true).unwrap();
    let s = t0.elapsed().as_secs_f64();
    let n: usize = out.iter().map(|r| r.len()).sum();
    println!("{{\"impl\":\"reft\",\"case\":\"decode_b8_p128_n32\",\"what\":\"generate\",\"new_tokens\":{n},\"s\":{s:.3},\"tokens_per_s\":{:.1}}}", n as f64 / s);
}
