//! The anchor benchmark, reft's side: the configurations of `../shared/docs/ANCHORS.md` with the
//! same arguments, batch and JSON keys as the reference script `anchor_bench.py` (pyreft on
//! PyTorch), so `benches/anchor.sh` can run both on one GPU and put them side by side.
//!
//! A LLaMA-shaped model with random weights (timing does not depend on the values) is made on
//! the device; LoReFT on `--layers` at positions `--pos` of the whole sequence (`f7+l7`: the
//! first 7 and last 7), the same positions in every row; random tokens with the loss on the
//! second half of each row; AdamW at lr 1e-3 and weight decay 0.01, no clipping (as the
//! reference). Each method prints one JSON line:
//! - `reft`: a training step with no caches (every step computes the whole batch, as the
//!   reference does; the frozen causal window applies, since it does on every real step);
//! - `reft_cached`: the same with the frozen-prefix cache on (a later epoch's cost over the
//!   same rows; the benchmark repeats one batch, so every row hits);
//! - `reft_recompute`: `reft` with per-layer activation recomputation (less memory);
//! - `forward`: forward and loss without gradients;
//! - `generate`: greedy decoding of `--new-tokens` tokens after the batch as prompt, LoReFT at
//!   the last prompt position (as the reference's `generate`);
//! - `profile`: where a step's time goes (below); `census`: a run laid out for a kernel profiler.
//!
//! ```text
//! cargo run --release -p reft-core --example anchor -- --shape 7b --batch 8 --seq 512 \
//!     --layers all --pos f7+l7 --rank 8 --steps 10 --device cuda --dtype bf16 --methods reft,forward
//! ```
//! `--shape tiny` runs anywhere (the CPU too); `1b` is TinyLlama-1.1B, `7b` LLaMA-7B, `8b` Llama-3 8B.

use candle_core::{DType, Device, Tensor, Var};
use reft_core::ops::{attention_probs, batched_matmul};
use reft_core::generate::GenerateOptions;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{Architecture, Backbone, Component, DecoderConfig, Model};
use reft_core::train::StepOptions;
use reft_core::{Batch, ReftModel};
use std::sync::Arc;
use std::time::Instant;

/// hidden, layers, intermediate, heads, kv heads, vocab (as `anchor_bench.py`'s SHAPES).
fn shape(name: &str) -> (usize, usize, usize, usize, usize, usize) {
    match name {
        "tiny" => (256, 4, 688, 8, 8, 32000),
        "1b" => (2048, 22, 5632, 32, 4, 32000),
        "7b" => (4096, 32, 11008, 32, 32, 32000),
        "8b" => (4096, 32, 14336, 32, 8, 128256),
        other => fail(&format!("unknown --shape {other} (tiny, 1b, 7b, 8b)")),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("anchor: {msg}");
    std::process::exit(2)
}

fn config(name: &str) -> DecoderConfig {
    let (d, n, f, h, kv, vocab) = shape(name);
    DecoderConfig {
        architecture: Architecture::Llama,
        hidden_size: d,
        intermediate_size: f,
        num_layers: n,
        num_heads: h,
        num_kv_heads: kv,
        head_dim: d / h,
        vocab_size: vocab,
        // transformers' LlamaConfig defaults, which the reference uses.
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 4096,
        tie_word_embeddings: false,
        attention_bias: false,
        sliding_window: None,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
        pad_token_id: None,
    }
}

fn model_params(c: &DecoderConfig) -> usize {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let kv = c.num_kv_heads * c.head_dim;
    let layer = 2 * d * d + 2 * d * kv + 3 * d * f + 2 * d;
    2 * c.vocab_size * d + c.num_layers * layer + d
}

/// `f7+l7` → the first 7 and the last 7 of `seq` positions (`anchor_bench.positions`).
/// `fN`: the first N positions; `lN`: the last N; `pN`: the last N of the prompt (the first
/// half of each row: the labels are on the second half), pyreft's quickstart placement. (`l1`
/// is the row's last token, whose output no label follows: no labelled token can see its edit.)
fn positions(spec: &str, seq: usize) -> Vec<i64> {
    let (mut first, mut last, mut prompt) = (0usize, 0usize, 0usize);
    for part in spec.split('+') {
        let n = || part[1..].parse::<usize>().unwrap_or_else(|_| fail(&format!("bad --pos part {part}")));
        match part.chars().next() {
            Some('f') => first = n(),
            Some('l') => last = n(),
            Some('p') => prompt = n(),
            _ => fail(&format!("bad --pos part {part}")),
        }
    }
    (0..first).chain(seq / 2 - prompt..seq / 2).chain(seq - last..seq).map(|p| p as i64).collect()
}

struct Args {
    shape: String,
    batch: usize,
    seq: usize,
    layers: String,
    pos: String,
    rank: usize,
    steps: usize,
    methods: String,
    device: String,
    dtype: String,
    new_tokens: usize,
}

fn args() -> Args {
    let mut a = Args { shape: "tiny".into(), batch: 8, seq: 512, layers: "all".into(), pos: "f7+l7".into(), rank: 8, steps: 10, methods: "reft,forward".into(), device: "cuda".into(), dtype: "bf16".into(), new_tokens: 128 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| fail(&format!("{k} needs a value")));
        let num = |v: &str| v.parse::<usize>().unwrap_or_else(|_| fail(&format!("{k}: not a number: {v}")));
        match k.as_str() {
            "--shape" => a.shape = v,
            "--batch" => a.batch = num(&v),
            "--seq" => a.seq = num(&v),
            "--layers" => a.layers = v,
            "--pos" => a.pos = v,
            "--rank" => a.rank = num(&v),
            "--steps" => a.steps = num(&v),
            "--methods" => a.methods = v,
            "--device" => a.device = v,
            "--dtype" => a.dtype = v,
            "--new-tokens" => a.new_tokens = num(&v),
            _ => fail(&format!("unknown argument {k}")),
        }
    }
    a
}

/// Random tokens in `3..vocab` (fixed LCG), the loss on the second half of each row.
fn batch(b: usize, t: usize, vocab: usize, pos: &[i64], n_iv: usize) -> Batch {
    let ids = reft_core::testing::lcg_token_ids(b * t, vocab, 1);
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < t / 2 { -100 } else { v as i64 }).collect();
    let positions = (0..n_iv * b).flat_map(|_| pos.iter().copied()).collect();
    Batch { input_ids: ids, batch_size: b, seq_len: t, positions: Some(positions), num_positions: pos.len(), labels: Some(labels), ..Default::default() }
}

/// Median and best seconds of `steps` timed calls after 3 warm-ups. Every call ends in a host
/// read of its result (a loss or tokens), which waits for the device.
fn timed(steps: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut v: Vec<f64> = (0..steps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0])
}

/// Seconds of a call of `f` ended by a device synchronisation: the second of two calls when the
/// first took under 2 s (the first warms up), else the first. Prints a `{"profile": label, ...}`
/// line at once (stderr gets the label first, so a hang shows where), with `host_s`, the time
/// until `f` returned: close to `s` when the host's launching, not the device, sets the pace.
fn clock(device: &Device, head: &str, label: &str, mut f: impl FnMut() -> candle_core::Result<()>) {
    eprintln!("profile: {label} ...");
    let mut once = || -> candle_core::Result<(f64, f64)> {
        let t0 = Instant::now();
        f()?;
        let host = t0.elapsed().as_secs_f64();
        device.synchronize()?;
        Ok((t0.elapsed().as_secs_f64(), host))
    };
    let r = once().and_then(|(s, h)| if s < 2.0 { once() } else { Ok((s, h)) });
    match r {
        Ok((s, h)) => println!("{{\"profile\":\"{label}\",{head},\"s\":{s:.5},\"host_s\":{h:.5}}}"),
        Err(e) => println!("{{\"profile\":\"{label}\",{head},\"error\":{:?}}}", e.to_string()),
    }
}

/// Runs `f` once with tracing on (`ops::set_trace`) and prints its time as `"{what} traced"`,
/// then each traced label as `"{what}:{label}"`.
fn traced_run(device: &Device, head: &str, what: &str, f: impl FnOnce() -> candle_core::Result<()>) {
    reft_core::ops::take_trace();
    let run = (|| -> candle_core::Result<f64> {
        device.synchronize()?;
        reft_core::ops::set_trace(true);
        let t0 = Instant::now();
        let r = f().and_then(|_| device.synchronize());
        reft_core::ops::set_trace(false);
        r.map(|_| t0.elapsed().as_secs_f64())
    })();
    match run {
        Ok(s) => println!("{{\"profile\":\"{what} traced\",{head},\"s\":{s:.5}}}"),
        Err(e) => println!("{{\"profile\":\"{what} traced\",{head},\"error\":{:?}}}", e.to_string()),
    }
    for (label, s, calls) in reft_core::ops::take_trace() {
        println!("{{\"profile\":\"{what}:{label}\",{head},\"s\":{s:.5},\"calls\":{calls}}}");
    }
}

/// For a kernel profiler (`ncu`): one training step and one untracked forward, each between
/// markers, the only f64 kernels of a run in another dtype (a fill
/// and a sum of 7 × 7 ones), so the profiler's kernel list splits into the step and the forward.
fn census(m: &mut ReftModel, bt: &Batch, device: &Device) -> candle_core::Result<()> {
    let err = |e: reft_core::ReftError| candle_core::Error::Msg(e.to_string());
    let opts = StepOptions { lr: 1e-3, weight_decay: 0.01, max_grad_norm: 0.0, ..Default::default() };
    let marker = || Tensor::ones((7, 7), DType::F64, device)?.sum_all()?.to_scalar::<f64>();
    // No warm-up: the profiler times each kernel alone, so one step shows them all.
    marker()?;
    m.train_step(std::slice::from_ref(bt), &opts).map_err(err)?;
    marker()?;
    m.forward(bt, false).map_err(err)?;
    device.synchronize()?;
    marker()?;
    Ok(())
}

/// Where a step's time goes (the GPU session's diagnosis of a step that is slow at some sizes):
/// first one layer's attention alone (probabilities, the product with V, its backward) and the
/// four GEMMs of that backward one by one, on random tensors of the model's attention shape; then
/// the untracked forward, the forward that builds the graph, one backward with each of the
/// crate's own backward ops timed (`ops::set_trace`), the forward with its backward, and a
/// training step.
fn profile(m: &mut ReftModel, bt: &Batch, cfg: &DecoderConfig, dtype: DType, device: &Device) {
    let head = format!("\"batch\":{},\"seq\":{},\"dtype\":\"{dtype:?}\"", bt.batch_size, bt.seq_len);
    let (b, t, kv, hd) = (bt.batch_size, bt.seq_len, cfg.num_kv_heads, cfg.head_dim);
    let rows = cfg.num_heads / kv * t;
    let rand = |shape: (usize, usize, usize, usize)| Tensor::randn(0f32, 1f32, shape, device).and_then(|x| x.to_dtype(dtype));
    let vars = (|| -> candle_core::Result<_> {
        let q = Var::from_tensor(&rand((b, kv, rows, hd))?)?;
        let k = Var::from_tensor(&rand((b, kv, t, hd))?)?;
        let v = Var::from_tensor(&rand((b, kv, t, hd))?)?;
        let mask = Tensor::zeros((b, 1, rows, t), DType::F32, device)?;
        let p = rand((b, kv, rows, t))?;
        let g = rand((b, kv, rows, hd))?;
        Ok((q, k, v, mask, p, g))
    })();
    let (q, k, v, mask, p, g) = match vars {
        Ok(x) => x,
        Err(e) => return println!("{{\"profile\":\"attention\",{head},\"error\":{:?}}}", e.to_string()),
    };
    let scale = 1.0 / (hd as f64).sqrt();
    let attn = || -> candle_core::Result<Tensor> {
        let probs = attention_probs(q.as_tensor(), k.as_tensor(), &mask, scale)?;
        batched_matmul(&probs, v.as_tensor())
    };
    clock(device, &head, "attention_forward", || attn().map(|_| ()));
    clock(device, &head, "attention_forward+backward", || (attn()? * &g)?.sum_all()?.backward().map(|_| ()));
    clock(device, &head, "gemm dP=dO·Vt", || g.matmul(&v.as_tensor().t()?).map(|_| ()));
    clock(device, &head, "gemm dV=Pt·dO", || p.t()?.matmul(&g).map(|_| ()));
    clock(device, &head, "gemm dQ=dS·K", || p.matmul(k.as_tensor()).map(|_| ()));
    clock(device, &head, "gemm dK=(Qt·dS)t", || q.as_tensor().t()?.matmul(&p)?.t().map(|_| ()));
    clock(device, &head, "forward", || m.forward(bt, false).map(|_| ()).map_err(|e| candle_core::Error::Msg(e.to_string())));
    clock(device, &head, "loss_graph", || m.loss_graph(bt).map(|_| ()).map_err(|e| candle_core::Error::Msg(e.to_string())));
    // One backward with the crate's own backward ops timed one by one (a stall after each),
    // then the untracked forward with its GEMMs, attention and fused ops (labels nest: an inner
    // op's time is also in its caller's).
    let graph = m.loss_graph(bt).map_err(|e| candle_core::Error::Msg(e.to_string()));
    traced_run(device, &head, "backward", || graph.as_ref().map_err(|e| candle_core::Error::Msg(e.to_string()))?.backward().map(|_| ()));
    drop(graph);
    let _ = m.forward(bt, false);
    traced_run(device, &head, "forward", || m.forward(bt, false).map(|_| ()).map_err(|e| candle_core::Error::Msg(e.to_string())));
    // The backward alone, untraced (a graph can run its backward more than once).
    match m.loss_graph(bt).map_err(|e| candle_core::Error::Msg(e.to_string())).and_then(|l| device.synchronize().map(|_| l)) {
        Ok(l) => clock(device, &head, "backward", || l.backward().map(|_| ())),
        Err(e) => println!("{{\"profile\":\"backward\",{head},\"error\":{:?}}}", e.to_string()),
    }
    clock(device, &head, "loss_graph+backward", || {
        let l = m.loss_graph(bt).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        l.backward().map(|_| ())
    });
    // The same work inside a training step runs on a thread of its own (`train.rs`: a large
    // stack for the backward), which on CUDA means another per-thread default stream.
    let opts = StepOptions { lr: 1e-3, weight_decay: 0.01, max_grad_norm: 0.0, ..Default::default() };
    clock(device, &head, "train_step", || m.train_step(std::slice::from_ref(bt), &opts).map(|_| ()).map_err(|e| candle_core::Error::Msg(e.to_string())));
    let opts = StepOptions { recompute: true, ..opts };
    clock(device, &head, "train_step recompute", || m.train_step(std::slice::from_ref(bt), &opts).map(|_| ()).map_err(|e| candle_core::Error::Msg(e.to_string())));
}

fn main() {
    let a = args();
    let device = match a.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => reft_core::cuda_device::new_cuda_device(0).unwrap_or_else(|e| fail(&format!("no CUDA device ({e}); build with --features cuda"))),
        d => fail(&format!("unknown --device {d} (cpu, cuda)")),
    };
    let dtype = match a.dtype.as_str() {
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        "f32" => DType::F32,
        d => fail(&format!("unknown --dtype {d} (bf16, f16, f32)")),
    };
    let cfg = config(&a.shape);
    let t0 = Instant::now();
    let dec = reft_core::testing::random_decoder(&cfg, dtype, &device, 0).unwrap_or_else(|e| fail(&format!("model: {e}")));
    eprintln!("anchor: random {} model ({} parameters, {:?}) made in {:.1}s", a.shape, model_params(&cfg), dtype, t0.elapsed().as_secs_f64());
    let base = Arc::new(Model { backbone: Backbone::Decoder(dec), tokenizer: None, source: "hf" });
    let layers: Vec<usize> = if a.layers == "all" {
        (0..cfg.num_layers).collect()
    } else {
        a.layers.split(';').map(|l| l.parse().unwrap_or_else(|_| fail(&format!("bad --layers {}", a.layers)))).collect()
    };
    let specs: Vec<InterventionSpec> = layers
        .iter()
        .map(|&layer| InterventionSpec { kind: Kind::Loreft, layer, component: Component::BlockOutput, rank: a.rank, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let pos = positions(&a.pos, a.seq);
    let bt = batch(a.batch, a.seq, cfg.vocab_size, &pos, specs.len());
    let tokens = (a.batch * a.seq) as f64;
    let head = format!(
        "\"shape\":\"{}\",\"batch\":{},\"seq\":{},\"layers\":\"{}\",\"pos\":\"{}\",\"rank\":{},\"dtype\":\"{}\",\"device\":\"{}\",\"model_params\":{}",
        a.shape, a.batch, a.seq, a.layers, a.pos, a.rank, a.dtype, a.device, model_params(&cfg)
    );
    for method in a.methods.split(',') {
        let mut m = ReftModel::new(base.clone(), &specs, 0).unwrap_or_else(|e| fail(&format!("interventions: {e}")));
        let opts = StepOptions { lr: 1e-3, weight_decay: 0.01, max_grad_norm: 0.0, recompute: method == "reft_recompute", ..Default::default() };
        let record = match method {
            "reft" | "reft_cached" | "reft_recompute" => {
                if method != "reft_cached" {
                    m.prefix_cache_bytes = 0;
                }
                let mut err = None;
                let (med, best) = timed(a.steps, || {
                    if let Err(e) = m.train_step(std::slice::from_ref(&bt), &opts) {
                        err.get_or_insert(e.to_string());
                    }
                });
                match err {
                    Some(e) => format!("\"error\":{e:?}"),
                    None => format!(
                        "\"step_s_median\":{med:.5},\"step_s_best\":{best:.5},\"tokens_per_s\":{:.0},\"trainable_params\":{},\"tflops_fwd_equiv\":{:.1}",
                        tokens / med,
                        m.num_trainable(),
                        2.0 * model_params(&cfg) as f64 * tokens / med / 1e12
                    ),
                }
            }
            "forward" => {
                let mut err = None;
                let (med, best) = timed(a.steps, || {
                    if let Err(e) = m.forward(&bt, false) {
                        err.get_or_insert(e.to_string());
                    }
                });
                match err {
                    Some(e) => format!("\"error\":{e:?}"),
                    None => format!("\"step_s_median\":{med:.5},\"step_s_best\":{best:.5},\"tokens_per_s\":{:.0}", tokens / med),
                }
            }
            "generate" => {
                let mut p = bt.clone();
                p.labels = None;
                // The last prompt position, on every intervened layer.
                p.positions = Some(vec![a.seq as i64 - 1; specs.len() * a.batch]);
                p.num_positions = 1;
                let o = GenerateOptions { max_new_tokens: a.new_tokens, stop_tokens: vec![], ..Default::default() };
                let run = || -> Result<(f64, usize), String> {
                    let t0 = Instant::now();
                    let out = m.generate(&p, &o, &mut |_| true).map_err(|e| e.to_string())?;
                    Ok((t0.elapsed().as_secs_f64(), out.iter().map(|r| r.len()).sum()))
                };
                match run().and_then(|_| run()) {
                    Err(e) => format!("\"error\":{e:?}"),
                    Ok((s, n)) => format!("\"reft_s\":{s:.4},\"new_tokens\":{n},\"new_tokens_per_s_reft\":{:.0}", n as f64 / s),
                }
            }
            "profile" => {
                profile(&mut m, &bt, &cfg, dtype, &device);
                continue;
            }
            "census" => match census(&mut m, &bt, &device) {
                Ok(()) => "\"census\":\"done\"".to_string(),
                Err(e) => format!("\"error\":{:?}", e.to_string()),
            },
            other => fail(&format!("unknown method {other} (reft, reft_cached, reft_recompute, forward, generate, profile, census)")),
        };
        let fused = device.is_cuda() && reft_core::ops::fused_cuda_kernels_on();
        println!("{{\"method\":\"{method}\",\"fused\":{fused},{head},{record}}}");
    }
}
