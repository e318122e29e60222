//! Peak memory and time of LoReFT training steps on the embedded default model (SmolLM2-135M,
//! CPU, f32), one configuration per process so that the peak (`VmHWM`) is this run's alone.
//! `benches/step-memory.sh` runs the grid and prints one JSON line per configuration.
//!
//! Usage: `step_memory BATCH SEQ LAYERS POSITIONS RANK RECOMPUTE STEPS`, e.g.
//! `step_memory 8 512 all f3+l3 4 true 2`. Random tokens; the loss is on the second half of
//! each row (as in `benches/train_step.rs`).

use reft_core::default_model::default_model_path;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{load_model, Component, LoadOptions};
use reft_core::positions::{intervention_locations, PadMode, Positions};
use reft_core::train::StepOptions;
use reft_core::{Batch, ReftModel};
use std::sync::Arc;
use std::time::Instant;

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 7 {
        eprintln!("usage: step_memory BATCH SEQ LAYERS(all|N) POSITIONS RANK RECOMPUTE(true|false) STEPS");
        std::process::exit(2);
    }
    let (b, t): (usize, usize) = (a[0].parse().unwrap(), a[1].parse().unwrap());
    // REFT_DTYPE=bf16 (or f16) loads the model in half precision: on the CPU that runs the
    // composite ops the GPU runs, so its peak approximates the GPU path's activation memory.
    let dtype = match std::env::var("REFT_DTYPE").as_deref() {
        Ok("bf16") => candle_core::DType::BF16,
        Ok("f16") => candle_core::DType::F16,
        _ => candle_core::DType::F32,
    };
    let opts = LoadOptions { dtype, ..LoadOptions::default() };
    let base = Arc::new(load_model(&default_model_path(), &opts).expect("run `npm run fetch-model` first"));
    let n_layers = base.num_layers();
    let layers: Vec<usize> = if a[2] == "all" { (0..n_layers).collect() } else { vec![a[2].parse().unwrap()] };
    let rank: usize = a[4].parse().unwrap();
    let recompute = a[5] == "true";
    let steps: usize = a[6].parse().unwrap();
    let specs: Vec<InterventionSpec> = layers
        .iter()
        .map(|&layer| InterventionSpec { kind: Kind::Loreft, layer, component: Component::BlockOutput, rank, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let mut m = ReftModel::new(base.clone(), &specs, 0).unwrap();
    let prompt = t / 2;
    let locs = intervention_locations(prompt, Positions::parse(&a[3]).unwrap(), specs.len(), true, PadMode::Last);
    let ids = reft_core::testing::lcg_token_ids(b * t, base.vocab_size(), 7);
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < prompt { -100 } else { v as i64 }).collect();
    let n = locs[0].len();
    let positions = locs.iter().flat_map(|l| std::iter::repeat(l.clone()).take(b).flatten()).collect();
    let batch = Batch { input_ids: ids, batch_size: b, seq_len: t, attention_mask: None, positions: Some(positions), num_positions: n, labels: Some(labels), ..Default::default() };
    let opts = StepOptions { lr: 1e-3, recompute, ..Default::default() };
    let before = vm_hwm_kib();
    let mut times = Vec::new();
    let mut loss = 0.0;
    for _ in 0..steps {
        let t0 = Instant::now();
        loss = m.train_step(std::slice::from_ref(&batch), &opts).unwrap().loss;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(|p, q| p.partial_cmp(q).unwrap());
    println!(
        "{{\"dtype\":\"{dtype:?}\",\"batch\":{b},\"seq\":{t},\"layers\":\"{}\",\"positions\":\"{}\",\"rank\":{rank},\"recompute\":{recompute},\"steps\":{steps},\"s_per_step_min\":{:.3},\"loss\":{loss:.4},\"peak_rss_gib\":{:.2},\"model_rss_gib\":{:.2}}}",
        a[2], a[3], times[0], vm_hwm_kib() as f64 / (1 << 20) as f64, before as f64 / (1 << 20) as f64
    );
}
