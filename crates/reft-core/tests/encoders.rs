//! Encoder parity with transformers and pyreft: fixtures from `scripts/make_encoder_fixtures.py`
//! (part of `make_fixtures.py`; pyreft 0.1.0 / pyvene 0.1.8, transformers 5.17) on a tiny random
//! `BertForSequenceClassification` (3 classes, token types) and a tiny
//! `RobertaForSequenceClassification` (regression, padding-offset positions). We compare the
//! bare encoders' hidden states and head logits, then pyreft's logits, loss and gradients of every
//! intervention parameter and of the trainable head (`allow_cls_grad`) to 1e-4 relative.

use candle_core::{DType, Device, Tensor, Var};
use reft_core::head::HeadSpec;
use reft_core::interventions::rotation::Rotation;
use reft_core::interventions::{Activation, InterventionSpec};
use reft_core::models::{load_model, Component, LoadOptions};
use reft_core::{Batch, ReftModel};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const RTOL: f64 = 1e-4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyreft/encoders")
}

fn floats(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1().unwrap()
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.flatten_all().unwrap().to_dtype(DType::I64).unwrap().to_vec1().unwrap()
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let scale = theirs.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1e-6) as f64;
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let err = (*a as f64 - *b as f64).abs();
        assert!(err <= RTOL * scale, "{what}[{k}]: ours {a} vs reference {b} (scale {scale})");
    }
}

/// A batch from tensors named `{prefix}input_ids`, `{prefix}attention_mask`, ...
fn batch_of(t: &HashMap<String, Tensor>, prefix: &str) -> Batch {
    let ids = &t[&format!("{prefix}input_ids")];
    let (b, s) = ids.dims2().unwrap();
    let positions = t.get(&format!("{prefix}positions"));
    Batch {
        input_ids: ints(ids).into_iter().map(|x| x as u32).collect(),
        batch_size: b,
        seq_len: s,
        attention_mask: Some(ints(&t[&format!("{prefix}attention_mask")]).into_iter().map(|x| x as u8).collect()),
        positions: positions.map(ints),
        num_positions: positions.map(|p| p.dims()[2]).unwrap_or(0),
        token_type_ids: t.get(&format!("{prefix}token_type_ids")).map(|x| ints(x).into_iter().map(|v| v as u32).collect()),
        class_labels: t.get(&format!("{prefix}class_labels")).map(floats),
        ..Default::default()
    }
}

fn num_labels(model: &str) -> usize {
    if model == "tiny-bert" { 3 } else { 1 }
}

#[test]
fn bare_encoders_and_stored_heads_match_transformers() {
    let t = candle_core::safetensors::load(dir().join("base.safetensors"), &Device::Cpu).unwrap();
    for key in ["bert", "roberta"] {
        let model = format!("tiny-{key}");
        let base = Arc::new(load_model(&dir().join(&model), &LoadOptions::default()).unwrap());
        assert_eq!(base.architecture(), key);
        let batch = batch_of(&t, &format!("{key}."));
        let mask = batch.attention_mask.clone().unwrap();
        // No head: the output is the last hidden state; compare real tokens only.
        let bare = ReftModel::new(base.clone(), &[], 0).unwrap();
        let h = floats(&bare.forward(&batch, true).unwrap().logits.unwrap());
        let want = floats(&t[&format!("{key}.last_hidden")]);
        let d = base.hidden_size();
        let keep = |x: &[f32]| -> Vec<f32> { x.chunks(d).zip(&mask).filter(|(_, &m)| m == 1).flat_map(|(c, _)| c.to_vec()).collect() };
        assert_close(&format!("{model} last hidden"), &keep(&h), &keep(&want));
        // With the checkpoint's classifier (BERT: pooler + classifier; RoBERTa: dense + out_proj).
        let spec = HeadSpec { num_labels: num_labels(&model), train_dense: None };
        let m = ReftModel::with_head(base, &[], Some(spec), 0).unwrap();
        let logits = floats(&m.forward(&batch, true).unwrap().logits.unwrap());
        assert_close(&format!("{model} logits"), &logits, &floats(&t[&format!("{key}.logits")]));
    }
}

fn check_case(name: &str) {
    let t = candle_core::safetensors::load(dir().join(format!("{name}.safetensors")), &Device::Cpu).unwrap();
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap()).unwrap();
    let model = j["model"].as_str().unwrap();
    let kind = reft_core::pyreft_import::kind_from_class(j["intervention_class"].as_str().unwrap()).unwrap();
    let rank = j["rank"].as_u64().unwrap() as usize;
    let specs: Vec<InterventionSpec> = j["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| InterventionSpec {
            kind,
            layer: s["layer"].as_u64().unwrap() as usize,
            component: Component::parse(s["component"].as_str().unwrap()).unwrap(),
            rank,
            dropout: 0.0,
            activation: Activation::Linear,
            add_bias: false,
        })
        .collect();
    let base = Arc::new(load_model(&dir().join(model), &LoadOptions::default()).unwrap());
    let head = HeadSpec { num_labels: num_labels(model), train_dense: None };
    let mut m = ReftModel::with_head(base, &specs, Some(head), 0).unwrap();
    let mut probes: Vec<(String, Var)> = Vec::new();
    for (i, iv) in m.interventions.iter_mut().enumerate() {
        if let Some(rot) = iv.rotation_mut() {
            let rc = &t[&format!("int{i}.rotate_layer")];
            *rot = Rotation::from_initial(rc).unwrap();
            let probe = Var::from_tensor(rc).unwrap();
            rot.probe = Some(probe.clone());
            probes.push((format!("int{i}.rotate_layer"), probe));
        }
        for (n, v) in iv.params() {
            if n != "rotation.a" {
                v.set(&t[&format!("int{i}.{n}")]).unwrap();
                probes.push((format!("int{i}.{n}"), v));
            }
        }
    }
    // The head's trainable tensors are exactly those pyreft unfroze, and start from the checkpoint.
    let head = m.head.as_ref().unwrap();
    let mut head_keys: Vec<String> = head.params().into_iter().map(|(n, _)| format!("head.{n}")).collect();
    let mut want_keys: Vec<String> = t.keys().filter(|k| k.starts_with("head.")).cloned().collect();
    head_keys.sort();
    want_keys.sort();
    assert_eq!(head_keys, want_keys, "{name}: trainable head tensors");
    for (n, v) in head.params() {
        let key = format!("head.{n}");
        assert_close(&format!("{name} {key} init"), &floats(v.as_tensor()), &floats(&t[&key]));
        probes.push((key, v));
    }
    let batch = batch_of(&t, "");
    let out = m.forward(&batch, true).unwrap();
    assert_close(&format!("{name} logits"), &floats(&out.logits.unwrap()), &floats(&t["logits"]));
    let want_loss = t["loss"].to_scalar::<f32>().unwrap() as f64;
    let loss = out.loss.unwrap();
    assert!((loss - want_loss).abs() <= RTOL * want_loss.abs(), "{name} loss {loss} vs {want_loss}");
    let store = m.loss_graph(&batch).unwrap().backward().unwrap();
    for (key, var) in probes {
        let g = store.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient for {key}"));
        let want = floats(&t[&format!("grad.{key}")]);
        assert!(want.iter().any(|x| x.abs() > 0.0), "{name}: pyreft's gradient for {key} is zero; the case tests nothing");
        assert_close(&format!("{name} grad {key}"), &floats(g), &want);
    }
}

#[test]
fn bert_classifier_with_loreft_matches_pyreft() {
    check_case("bert_loreft");
}

#[test]
fn bert_block_input_nodireft_matches_pyreft() {
    check_case("bert_nodireft_input");
}

#[test]
fn roberta_regression_with_loreft_matches_pyreft() {
    check_case("roberta_loreft");
}

#[test]
fn heads_need_an_encoder_and_labels() {
    let base = Arc::new(reft_core::testing::tiny_model(DType::F32, 1).unwrap());
    let err = ReftModel::with_head(base, &[], Some(HeadSpec { num_labels: 2, train_dense: None }), 0).err().unwrap();
    assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL");
    let enc = Arc::new(load_model(&dir().join("tiny-bert"), &LoadOptions::default()).unwrap());
    assert_eq!(ReftModel::with_head(enc.clone(), &[], Some(HeadSpec { num_labels: 0, train_dense: None }), 0).err().unwrap().code(), "ERR_INVALID_CONFIG");
    let m = ReftModel::with_head(enc.clone(), &[], Some(HeadSpec { num_labels: 3, train_dense: None }), 0).unwrap();
    let t = candle_core::safetensors::load(dir().join("base.safetensors"), &Device::Cpu).unwrap();
    let mut batch = batch_of(&t, "bert.");
    batch.class_labels = Some(vec![0.0, 3.0, 1.0]);
    assert_eq!(m.forward(&batch, false).err().unwrap().code(), "ERR_OUT_OF_RANGE");
    batch.class_labels = Some(vec![0.0, 1.0]);
    assert_eq!(m.forward(&batch, false).err().unwrap().code(), "ERR_SHAPE");
    batch.class_labels = None;
    assert_eq!(m.loss_graph(&batch).err().unwrap().code(), "ERR_INVALID_CONFIG");
    // An encoder has no LM head: generation says so instead of computing something else.
    let bare = ReftModel::new(enc, &[], 0).unwrap();
    let o = reft_core::generate::GenerateOptions::default();
    assert_eq!(bare.generate(&batch, &o, &mut |_| true).err().unwrap().code(), "ERR_UNSUPPORTED_MODEL");
}

#[test]
fn checkpoints_keep_the_head() {
    let t = candle_core::safetensors::load(dir().join("roberta_loreft.safetensors"), &Device::Cpu).unwrap();
    let base = Arc::new(load_model(&dir().join("tiny-roberta"), &LoadOptions::default()).unwrap());
    let spec = InterventionSpec { kind: reft_core::interventions::Kind::Loreft, layer: 1, component: Component::BlockOutput, rank: 2, dropout: 0.0, activation: Activation::Linear, add_bias: false };
    let mut m = ReftModel::with_head(base.clone(), &[spec], Some(HeadSpec { num_labels: 1, train_dense: None }), 3).unwrap();
    let mut batch = batch_of(&t, "");
    batch.positions = Some(vec![0, 1, 0, 2, 0, 3]);
    // Move the head away from the checkpoint's classifier so a reload that ignored ours would show.
    m.train_step(std::slice::from_ref(&batch), &reft_core::train::StepOptions { lr: 0.05, ..Default::default() }).unwrap();
    let before = floats(&m.forward(&batch, true).unwrap().logits.unwrap());
    let tmp = std::env::temp_dir().join(format!("reft-enc-ckpt-{}", std::process::id()));
    m.save(&tmp, true).unwrap();
    let back = ReftModel::load(base, &tmp, true).unwrap();
    assert!(back.head.is_some(), "the head spec is saved");
    let after = floats(&back.forward(&batch, true).unwrap().logits.unwrap());
    assert_eq!(before, after);
    assert_eq!(back.named_params().len(), m.named_params().len());
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The tiny random BERT of `testing` (used by the Node tests) loads, tokenizes pairs with token
/// types, and a LoReFT + head learns a labelling it could not know before training.
#[test]
fn tiny_encoder_trains() {
    let dir = std::env::temp_dir().join(format!("reft-tiny-enc-{}", std::process::id()));
    reft_core::testing::write_tiny_encoder(&dir, 3, Some(2)).unwrap();
    let base = Arc::new(load_model(&dir, &LoadOptions::default()).unwrap());
    let tok = base.tokenizer.as_ref().unwrap();
    let e = tok.encode_pair("Hi there", Some("ok"), true, None).unwrap();
    assert_eq!(e.ids.len(), e.type_ids.len());
    assert_eq!((e.ids[0], *e.ids.last().unwrap()), (2, 3), "[CLS] … [SEP]");
    assert_eq!(e.type_ids.iter().filter(|&&t| t == 1).count(), 3, "`o ##k [SEP]` is segment 1");
    let texts = [("good fun", 1.0), ("bad day", 0.0), ("great joy", 1.0), ("awful pain", 0.0)];
    let encoded: Vec<_> = texts.iter().map(|(t, _)| tok.encode_pair(t, None, true, None).unwrap()).collect();
    let t = encoded.iter().map(|e| e.ids.len()).max().unwrap();
    let mut batch = Batch { batch_size: texts.len(), seq_len: t, num_positions: 1, ..Default::default() };
    let (mut ids, mut mask) = (vec![], vec![]);
    for e in &encoded {
        ids.extend(e.ids.iter().copied().chain(std::iter::repeat(0).take(t - e.ids.len())));
        mask.extend(std::iter::repeat(1u8).take(e.ids.len()).chain(std::iter::repeat(0).take(t - e.ids.len())));
    }
    batch.input_ids = ids;
    batch.attention_mask = Some(mask);
    batch.positions = Some(vec![0; 2 * texts.len()]);
    batch.class_labels = Some(texts.iter().map(|(_, y)| *y as f32).collect());
    let specs: Vec<InterventionSpec> = (0..2)
        .map(|layer| InterventionSpec { kind: reft_core::interventions::Kind::Loreft, layer, component: Component::BlockOutput, rank: 1, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let mut m = ReftModel::with_head(base, &specs, Some(HeadSpec { num_labels: 2, train_dense: Some(true) }), 0).unwrap();
    let first = m.forward(&batch, false).unwrap().loss.unwrap();
    let opts = reft_core::train::StepOptions { lr: 2e-2, ..Default::default() };
    for _ in 0..40 {
        m.train_step(std::slice::from_ref(&batch), &opts).unwrap();
    }
    let last = m.forward(&batch, false).unwrap().loss.unwrap();
    assert!(last < 0.1 * first, "loss {first} → {last}");
    std::fs::remove_dir_all(&dir).unwrap();
}
