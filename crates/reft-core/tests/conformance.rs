//! The same contract for every intervention kind (peft-style conformance table): save/load
//! round trip gives equal outputs, dropout is off in eval, only intervention tensors train,
//! rotations stay orthonormal through training, training lowers the loss, cached and uncached
//! decoding agree, and bad input gives a coded error instead of a panic.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use reft_core::generate::GenerateOptions;
use reft_core::interventions::Kind;
use reft_core::models::Component;
use reft_core::train::StepOptions;
use reft_core::{Batch, ReftModel};

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("reft-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn logits(m: &ReftModel, b: &Batch) -> Vec<f32> {
    m.forward(b, true).unwrap().logits.unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn save_load_round_trip_every_kind() {
    for kind in ALL_KINDS {
        let mut m = reft(&[(kind, 0, Component::BlockOutput), (kind, 1, Component::MlpOutput)], DType::F32, 11);
        let b = batch(2);
        // Train a little so rotation parameters are non-zero and AdamW has state.
        m.train_step(std::slice::from_ref(&b), &StepOptions { lr: 1e-2, ..Default::default() }).unwrap();
        let dir = tmpdir(&format!("rt-{kind:?}"));
        m.save(&dir, true).unwrap();
        let loaded = ReftModel::load(m.base.clone(), &dir, true).unwrap();
        assert_eq!(max_abs_diff(&logits(&m, &b), &logits(&loaded, &b)), 0.0, "{kind:?}: logits after reload");
        assert_eq!(loaded.num_trainable(), m.num_trainable());
        // Continuing from the checkpoint reproduces continuing in memory (exact resume).
        let mut loaded = loaded;
        let opts = StepOptions { lr: 1e-2, ..Default::default() };
        let a = m.train_step(std::slice::from_ref(&b), &opts).unwrap();
        let c = loaded.train_step(std::slice::from_ref(&b), &opts).unwrap();
        assert_eq!(a.loss, c.loss, "{kind:?}: resumed loss");
        assert_eq!(max_abs_diff(&logits(&m, &b), &logits(&loaded, &b)), 0.0, "{kind:?}: resumed params");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn untrained_model_without_interventions_equals_base() {
    // Interventions edit only selected rows: positions before the first edited one are untouched.
    let m = reft(&[(Kind::Loreft, 1, Component::BlockOutput)], DType::F32, 1);
    let bare = ReftModel::new(m.base.clone(), &[], 0).unwrap();
    let mut b = batch(1);
    let (la, lb) = (logits(&m, &b), logits(&bare, &{ let mut x = b.clone(); x.positions = None; x }));
    let v = 259;
    // Row 1's first edited position is 0, so everything there differs; row 0's is 1: position 0 equal.
    assert_eq!(max_abs_diff(&la[..v], &lb[..v]), 0.0);
    assert!(max_abs_diff(&la[v..2 * v], &lb[v..2 * v]) > 1e-4);
    b.positions = None;
    assert!(m.forward(&b, false).is_err(), "a model with interventions requires positions");
}

#[test]
fn dropout_only_in_training_mode() {
    let mut specs = vec![spec(Kind::Loreft, 0, Component::BlockOutput)];
    specs[0].dropout = 0.5;
    let mut m = ReftModel::new(model(DType::F32), &specs, 3).unwrap();
    let b = batch(1);
    assert_eq!(max_abs_diff(&logits(&m, &b), &logits(&m, &b)), 0.0, "eval forward is deterministic");
    m.training = true;
    let (l1, _, _) = m.gradients(std::slice::from_ref(&b)).unwrap();
    let (l2, _, _) = m.gradients(std::slice::from_ref(&b)).unwrap();
    assert_eq!(l1, l2, "masks are a function of (seed, step, micro-batch)");
    let (l3, _, _) = m.gradients(&[b.clone(), b.clone()]).unwrap();
    assert_ne!(l1, l3, "the second micro-batch draws other masks");
    m.training = false;
    let (e1, _, _) = m.gradients(std::slice::from_ref(&b)).unwrap();
    assert_ne!(l1, e1, "dropout is active in training mode only");
    let eval = m.forward(&b, false).unwrap().loss.unwrap();
    assert!((eval - e1).abs() < 1e-9, "eval-mode gradients use no dropout");
}

#[test]
fn rotations_stay_orthonormal_and_loss_falls() {
    for kind in [Kind::Loreft, Kind::DireftOrth, Kind::Consreft, Kind::Lobireft, Kind::Direft, Kind::Noreft] {
        let mut m = reft(&[(kind, 0, Component::BlockOutput)], DType::F32, 5);
        let b = batch(1);
        let first = m.forward(&b, false).unwrap().loss.unwrap();
        let opts = StepOptions { lr: 2e-2, ..Default::default() };
        for _ in 0..60 {
            m.train_step(std::slice::from_ref(&b), &opts).unwrap();
        }
        let last = m.forward(&b, false).unwrap().loss.unwrap();
        assert!(last < first - 0.05, "{kind:?}: loss {first} → {last}");
        if let Some(rot) = m.interventions[0].rotation() {
            let rc = rot.matrix(false).unwrap();
            let moved = (rc.clone() - &rot.base).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(moved > 1e-3, "{kind:?}: R must have trained (moved {moved})");
            let gram = rc.t().unwrap().matmul(&rc).unwrap();
            let eye = Tensor::eye(3, DType::F32, &candle_core::Device::Cpu).unwrap();
            let err = (gram - eye).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(err < 1e-5, "{kind:?}: ‖RRᵀ − I‖∞ = {err} after 60 steps");
        }
    }
}

#[test]
fn gradient_accumulation_equals_the_mean_of_micro_batches() {
    let m = reft(&[(Kind::Loreft, 0, Component::BlockOutput)], DType::F64, 9);
    let b = batch(1);
    let (l1, _, g1) = m.gradients(&[b.clone(), b.clone()]).unwrap();
    let (l2, _, g2) = m.gradients(std::slice::from_ref(&b)).unwrap();
    assert!((l1 - l2).abs() < 1e-12);
    for (a, c) in g1.iter().zip(&g2) {
        let d = (a - c).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        assert!(d < 1e-6, "accumulated gradient differs by {d}");
    }
}

#[test]
fn cached_and_uncached_decoding_agree_and_padding_is_transparent() {
    let m = reft(&[(Kind::Loreft, 0, Component::BlockOutput), (Kind::Direft, 1, Component::BlockOutput)], DType::F32, 4);
    // Row 0 is left-padded by 2; row 1 is the same prompt unpadded in a batch of its own.
    let ids = vec![0, 0, 10, 20, 30, 40, 50, 60, 11, 21, 31, 41, 51, 61];
    let padded = Batch {
        input_ids: ids[..14].iter().map(|&x| x as u32).collect(),
        batch_size: 2,
        seq_len: 7,
        attention_mask: Some(vec![0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
        positions: Some(vec![6, 6, 6, 6, 2, 6, 0, 6]),
        num_positions: 2,
        labels: None,
        ..Default::default()
    };
    for greedy in [true, false] {
        let o = GenerateOptions { max_new_tokens: 8, greedy, temperature: 0.9, top_k: 20, top_p: 0.9, seed: 5, ..Default::default() };
        let cached = m.generate(&padded, &o, &mut |_| true).unwrap();
        let uncached = m.generate(&padded, &GenerateOptions { use_cache: false, ..o.clone() }, &mut |_| true).unwrap();
        assert_eq!(cached, uncached, "greedy={greedy}");
    }
    let single = Batch {
        input_ids: vec![10, 20, 30, 40, 50],
        batch_size: 1,
        seq_len: 5,
        attention_mask: None,
        positions: Some(vec![4, 4, 0, 4]),
        num_positions: 2,
        labels: None,
        ..Default::default()
    };
    let o = GenerateOptions { max_new_tokens: 8, ..Default::default() };
    let a = m.generate(&padded, &o, &mut |_| true).unwrap();
    let c = m.generate(&single, &o, &mut |_| true).unwrap();
    assert_eq!(a[0], c[0], "left padding must not change a row's tokens");
    // Stop tokens end a row and are kept.
    let stop = a[0][2];
    let s = m.generate(&single, &GenerateOptions { stop_tokens: vec![stop], ..o }, &mut |_| true).unwrap();
    assert_eq!(s[0].last(), Some(&stop));
    assert!(s[0].len() <= 3);
    // A stop token outside the vocabulary is refused: the first one pads finished rows' inputs.
    let err = m.generate(&single, &GenerateOptions { stop_tokens: vec![259, stop], ..o }, &mut |_| true).unwrap_err();
    assert_eq!(err.code(), "ERR_OUT_OF_RANGE", "{err}");
    assert!(err.to_string().contains("stop token"), "{err}");
}

#[test]
fn bad_input_gives_coded_errors() {
    let m = reft(&[(Kind::Loreft, 0, Component::BlockOutput)], DType::F32, 1);
    let good = batch(1);
    // The same code from the forward and from training (never a panic), also where the
    // training path reads positions and labels before running anything.
    let code = |b: &Batch| {
        let f = m.forward(b, false).err().map(|e| e.code()).unwrap_or("ok");
        let g = m.gradients(std::slice::from_ref(b)).err().map(|e| e.code()).unwrap_or("ok");
        assert_eq!(f, g, "forward and training disagree");
        if b.validate(1, 259).is_err() {
            assert_eq!(m.labels_after_interventions(b), None, "a batch that fails validation has no answer");
        }
        f
    };
    let mut b = good.clone();
    b.positions.as_mut().unwrap()[0] = 9;
    assert_eq!(code(&b), "ERR_OUT_OF_RANGE");
    let mut b = good.clone();
    b.positions.as_mut().unwrap().pop();
    assert_eq!(code(&b), "ERR_SHAPE");
    let mut b = good.clone();
    b.input_ids[3] = 100_000;
    assert_eq!(code(&b), "ERR_OUT_OF_RANGE");
    let mut b = good.clone();
    b.seq_len = 8;
    assert_eq!(code(&b), "ERR_SHAPE");
    let mut b = good.clone();
    b.labels = Some(vec![-100; 27]);
    assert_eq!(code(&b), "ERR_INVALID_CONFIG");
    let mut b = good.clone();
    b.labels.as_mut().unwrap().truncate(5);
    assert_ne!(code(&b), "ok");
    let mut s = spec(Kind::Loreft, 7, Component::BlockOutput);
    assert_eq!(ReftModel::new(model(DType::F32), &[s.clone()], 0).err().unwrap().code(), "ERR_OUT_OF_RANGE");
    s.layer = 0;
    s.rank = 0;
    assert_eq!(ReftModel::new(model(DType::F32), &[s], 0).err().unwrap().code(), "ERR_OUT_OF_RANGE");
    let missing = ReftModel::load(model(DType::F32), std::path::Path::new("/nonexistent/ckpt"), false);
    assert_eq!(missing.err().unwrap().code(), "ERR_IO");
    // A truncated safetensors file is a format error, not a panic.
    let dir = tmpdir("truncated");
    m.save(&dir, false).unwrap();
    let f = dir.join("interventions.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(ReftModel::load(m.base.clone(), &dir, false).err().unwrap().code(), "ERR_FORMAT");
    std::fs::remove_dir_all(&dir).unwrap();
    let spec_json = r#"{"kind":"loreft","layer":0,"rank":2,"bogus":1}"#;
    assert!(serde_json::from_str::<reft_core::interventions::InterventionSpec>(spec_json).is_err(), "unknown fields are rejected");
}

#[test]
fn training_is_seeded_and_deterministic() {
    let run = |seed| {
        let mut specs = vec![spec(Kind::Loreft, 0, Component::BlockOutput)];
        specs[0].dropout = 0.1;
        let mut m = ReftModel::new(model(DType::F32), &specs, seed).unwrap();
        m.training = true;
        let b = batch(1);
        (0..4).map(|_| m.train_step(std::slice::from_ref(&b), &StepOptions::default()).unwrap().loss).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1), "same seed, same losses");
    assert_ne!(run(1), run(2), "another seed initialises differently");
}

#[test]
fn non_finite_loss_is_reported() {
    let mut m = reft(&[(Kind::Direft, 0, Component::BlockOutput)], DType::F32, 1);
    let (_, v) = &m.interventions[0].params()[0];
    v.set(&(v.as_tensor().ones_like().unwrap() * f64::NAN).unwrap()).unwrap();
    let before: Vec<Vec<f32>> = m.named_params().iter().skip(1).map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
    let err = m.train_step(&[batch(1)], &StepOptions::default()).err().unwrap();
    assert_eq!(err.code(), "ERR_NON_FINITE");
    // The failed step (its backward runs before the loss is read) changed no parameter.
    let after: Vec<Vec<f32>> = m.named_params().iter().skip(1).map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
    assert_eq!(before, after);
}

#[test]
fn resume_is_exact_with_dropout_and_save_keeps_other_files() {
    let mut specs = vec![spec(Kind::Loreft, 0, Component::BlockOutput)];
    specs[0].dropout = 0.2;
    let mut m = ReftModel::new(model(DType::F32), &specs, 8).unwrap();
    m.training = true;
    let b = batch(1);
    let opts = StepOptions { lr: 1e-2, ..Default::default() };
    m.train_step(std::slice::from_ref(&b), &opts).unwrap();
    let dir = tmpdir("resume-dropout");
    std::fs::create_dir_all(dir.join("checkpoint-1")).unwrap();
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    m.save(&dir, true).unwrap();
    assert!(dir.join("checkpoint-1").is_dir() && dir.join("notes.txt").is_file(), "save must not delete other files");
    let mut r = ReftModel::load(m.base.clone(), &dir, true).unwrap();
    r.training = true;
    for _ in 0..3 {
        let a = m.train_step(std::slice::from_ref(&b), &opts).unwrap().loss;
        let c = r.train_step(std::slice::from_ref(&b), &opts).unwrap().loss;
        assert_eq!(a, c, "resumed dropout run diverged");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn frozen_prefix_cache_gives_the_same_gradients() {
    let b = batch(1);
    let mut plain = reft(&[(Kind::Loreft, 1, Component::BlockOutput)], DType::F64, 12);
    plain.prefix_cache_bytes = 0;
    let cached = reft(&[(Kind::Loreft, 1, Component::BlockOutput)], DType::F64, 12);
    let (l0, _, g0) = plain.gradients(std::slice::from_ref(&b)).unwrap();
    for call in 0..2 {
        // The first call fills the cache, the second reads it.
        let (l1, _, g1) = cached.gradients(std::slice::from_ref(&b)).unwrap();
        assert!((l0 - l1).abs() < 1e-12, "call {call}: loss {l0} vs {l1}");
        for (a, c) in g0.iter().zip(&g1) {
            let d = (a - c).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            assert!(d < 1e-6, "call {call}: gradient differs by {d}");
        }
    }
    assert_eq!(cached.prefix_cache.lock().unwrap().as_ref().map(|c| c.len()), Some(3), "one entry per example");
}

/// pyreft's quickstart shape: one position at the last prompt token, loss on the completion,
/// prompts of different lengths (so the frozen window starts at the shortest prompt).
fn last_position_batch() -> Batch {
    let row = |n: usize, off: usize| (0..n).map(|i| ((i * 31 + off * 7 + 5) % 250) as u32).collect::<Vec<_>>();
    Batch::last_position_supervised(&[(row(11, 0), 6), (row(9, 1), 4), (row(12, 2), 8)], 0)
}

#[test]
fn frozen_window_gives_the_same_loss_and_gradients() {
    let cases: [&[(Kind, usize, Component)]; 3] = [
        &[(Kind::Loreft, 1, Component::BlockOutput)],
        &[(Kind::Direft, 0, Component::BlockInput), (Kind::Loreft, 1, Component::AttentionOutput)],
        &[(Kind::Noreft, 1, Component::MlpOutput)],
    ];
    for (c, kinds) in cases.iter().enumerate() {
        for cache in [0usize, 1 << 20] {
            let mut b = last_position_batch();
            if kinds.len() > 1 {
                b.positions = Some([b.positions.clone().unwrap(), vec![7, 5, 9]].concat());
            }
            let mut full = reft(kinds, DType::F64, 21);
            full.frozen_window = false;
            full.prefix_cache_bytes = cache;
            let mut win = reft(kinds, DType::F64, 21);
            win.prefix_cache_bytes = cache;
            assert_eq!(win.frozen_positions(&b), 3, "case {c}: the shortest prompt's last token");
            for m in [&mut full, &mut win] {
                m.training = true;
            }
            let (l0, _, g0) = full.gradients(std::slice::from_ref(&b)).unwrap();
            // The second call reads the window's keys and values from the prefix cache.
            for call in 0..2 {
                let (l1, _, g1) = win.gradients(std::slice::from_ref(&b)).unwrap();
                assert!((l0 - l1).abs() < 1e-12, "case {c} cache {cache} call {call}: loss {l0} vs {l1}");
                for (a, g) in g0.iter().zip(&g1) {
                    let d = (a - g).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
                    let s = a.abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
                    assert!(s > 1e-8 && d < 1e-10 * s.max(1.0), "case {c} cache {cache} call {call}: gradient differs by {d} (scale {s})");
                }
            }
            let cached_rows = win.prefix_cache.lock().unwrap().as_ref().map(|c| c.kv_len()).unwrap_or(0);
            assert_eq!(cached_rows, if cache > 0 { 3 } else { 0 }, "case {c}: one key/value entry per example");
        }
    }
    // Positions from 0 (as with f7+l7) turn it off.
    let m = reft(&[(Kind::Loreft, 1, Component::BlockOutput)], DType::F64, 21);
    assert_eq!(m.frozen_positions(&batch(1)), 0);
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// Loss and gradients of `win` (frozen window on) against `full` (off): by the graph (twice,
/// the second call reading the prefix cache when it is on) and by recomputation.
fn same_as_full(what: &str, full: &ReftModel, win: &ReftModel, b: &Batch) -> f64 {
    let (l0, n0, g0) = full.gradients(std::slice::from_ref(b)).unwrap();
    let scale = g0.iter().map(max_abs).fold(0.0, f64::max);
    for (call, recompute) in [(0, false), (1, false), (2, true)] {
        let (l1, n1, g1) = win.gradients_with(std::slice::from_ref(b), recompute).unwrap();
        assert_eq!(n0, n1, "{what} call {call}: labelled tokens");
        assert!((l0 - l1).abs() < 1e-12, "{what} call {call}: loss {l0} vs {l1}");
        for (a, g) in g0.iter().zip(&g1) {
            let d = max_abs(&(a - g).unwrap());
            assert!(d <= 1e-10 * scale.max(1.0), "{what} call {call}: gradient differs by {d} (scale {scale})");
        }
    }
    scale
}

#[test]
fn labels_before_the_interventions_carry_loss_but_no_gradient() {
    let kinds = [(Kind::Direft, 0, Component::BlockInput), (Kind::Loreft, 1, Component::BlockOutput)];
    for cache in [0usize, 1 << 20] {
        let make = |window: bool| {
            let mut m = reft(&kinds, DType::F64, 31);
            m.frozen_window = window;
            m.prefix_cache_bytes = cache;
            m
        };
        let (full, win) = (make(false), make(true));
        // Labels on every real token after the first (the whole row, as in pretraining-style
        // data): the window still starts at the first intervened position (3), and positions
        // 0..3 add their loss from the run without a graph.
        let mut b = last_position_batch();
        b.positions = Some([b.positions.clone().unwrap(), vec![7, 5, 9]].concat());
        let mask = b.attention_mask.clone().unwrap();
        for (i, y) in b.labels.as_mut().unwrap().iter_mut().enumerate() {
            if i % b.seq_len > 0 && mask[i] == 1 {
                *y = b.input_ids[i] as i64;
            }
        }
        assert_eq!(win.frozen_positions(&b), 3);
        assert!(!win.loss_is_frozen(&b));
        // Row 0 (11 tokens, first intervened at 5): shifted labels 5..=9; row 1 (9, 3): 3..=7;
        // row 2 (12, 7): 7..=10.
        assert_eq!(win.labels_after_interventions(&b), Some(5 + 5 + 4));
        let scale = same_as_full(&format!("cache {cache}, labels before the window"), &full, &win, &b);
        assert!(scale > 1e-8, "the gradients must not vanish");

        // Each row intervened at its last real token, labels before it only: no labelled token
        // can see an edit, so the loss is a constant and every gradient exactly zero; the full
        // graph (window off) finds the same zeros by back-propagating through everything.
        let mut late = last_position_batch();
        late.positions = Some(vec![10, 8, 11, 10, 8, 11]);
        assert!(win.loss_is_frozen(&late));
        assert_eq!(win.labels_after_interventions(&late), Some(0));
        assert_eq!(win.frozen_positions(&late), 0);
        let scale = same_as_full(&format!("cache {cache}, labels before every edit"), &full, &win, &late);
        assert_eq!(scale, 0.0, "a loss no edit can reach has no gradient");
        let (l, _, _) = win.gradients(std::slice::from_ref(&late)).unwrap();
        let base = full.forward(&late, false).unwrap().loss.unwrap();
        assert!((l - base).abs() < 1e-12, "the constant loss is the forward's: {l} vs {base}");
    }
    // Above layer 0 a frozen loss reads the states entering the lowest intervened layer from
    // the frozen-prefix cache, as training does (the calls after the first).
    let one = [(Kind::Loreft, 1, Component::BlockOutput)];
    let mut full = reft(&one, DType::F64, 32);
    full.frozen_window = false;
    full.prefix_cache_bytes = 0;
    let win = reft(&one, DType::F64, 32);
    let mut late = last_position_batch();
    late.positions = Some(vec![10, 8, 11]);
    assert!(win.loss_is_frozen(&late));
    same_as_full("layer 1, labels before every edit", &full, &win, &late);
    assert_eq!(win.prefix_cache.lock().unwrap().as_ref().map(|c| c.len()), Some(3), "one cached row per example");
    // Without labels the question does not arise; an encoder's is not causal.
    let m = reft(&kinds, DType::F64, 31);
    let mut b = last_position_batch();
    b.labels = None;
    assert_eq!(m.labels_after_interventions(&b), None);
    assert!(!m.loss_is_frozen(&b));
}

#[test]
fn recomputation_gives_the_same_loss_and_gradients() {
    use reft_core::interventions::Kind::*;
    // f-positions from 0 (no frozen window), the last-position batch (window), stacked sites at
    // every component including the block input of layer 0 (the embeddings' layer).
    let cases: [(&[(Kind, usize, Component)], Batch); 3] = [
        (&[(Loreft, 0, Component::BlockOutput), (Direft, 1, Component::MlpOutput)], batch(2)),
        (&[(Loreft, 1, Component::BlockOutput)], last_position_batch()),
        (&[(Noreft, 0, Component::BlockInput), (Consreft, 1, Component::AttentionOutput), (Lobireft, 1, Component::BlockOutput)], batch(3)),
    ];
    for (c, (kinds, b)) in cases.iter().enumerate() {
        let m = reft(kinds, DType::F64, 31);
        let (l0, n0, g0) = m.gradients_with(std::slice::from_ref(b), false).unwrap();
        let (l1, n1, g1) = m.gradients_with(std::slice::from_ref(b), true).unwrap();
        assert_eq!(n0, n1);
        assert!((l0 - l1).abs() < 1e-12, "case {c}: loss {l0} vs {l1}");
        for ((name, _), (a, g)) in m.named_params().iter().zip(g0.iter().zip(&g1)) {
            let d = (a - g).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            let s = a.abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            assert!(s > 1e-8 && d <= 1e-6 * s.max(1e-3), "case {c} {name}: gradient differs by {d} (scale {s})");
        }
    }
    // Training with it lowers the loss, and dropout masks are reproducible per step.
    let mut specs = vec![spec(Loreft, 0, Component::BlockOutput), spec(Direft, 1, Component::BlockOutput)];
    specs[1].dropout = 0.3;
    let mut m = ReftModel::new(model(DType::F32), &specs, 4).unwrap();
    m.training = true;
    let b = batch(2);
    let (a, _, _) = m.gradients_with(std::slice::from_ref(&b), true).unwrap();
    let (a2, _, _) = m.gradients_with(std::slice::from_ref(&b), true).unwrap();
    assert_eq!(a, a2, "same step, same masks");
    let opts = StepOptions { lr: 2e-2, recompute: true, ..Default::default() };
    let first = m.train_step(std::slice::from_ref(&b), &opts).unwrap().loss;
    let mut last = first;
    for _ in 0..15 {
        last = m.train_step(std::slice::from_ref(&b), &opts).unwrap().loss;
    }
    assert!(last < first * 0.9, "loss {first} -> {last}");
}
