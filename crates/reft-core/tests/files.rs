//! Loading from in-memory files (the WebAssembly route) gives what loading from paths gives: the
//! tiny model from a [`FileMap`] (single file and sharded) equals the one read from its directory;
//! a checkpoint's `to_files` is byte for byte what `save` writes and `from_files` restores it
//! (optimizer included); missing files fail with the codes the path loaders use.

mod common;

use candle_core::safetensors::load_buffer;
use candle_core::{Device, Tensor};
use common::{batch, max_abs_diff, spec};
use reft_core::interventions::Kind;
use reft_core::models::{load_model, load_model_from_files, Component, LoadOptions, Model};
use reft_core::testing::{tiny_encoder_files, tiny_model_files, write_tiny_model};
use reft_core::train::StepOptions;
use reft_core::{FileMap, ReftModel};
use std::collections::HashMap;
use std::sync::Arc;

fn logits(base: Arc<Model>) -> Vec<f32> {
    let specs = [spec(Kind::Loreft, 1, Component::BlockOutput)];
    let m = ReftModel::new(base, &specs, 3).unwrap();
    m.forward(&batch(1), true).unwrap().logits.unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("reft-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn model_from_files_equals_model_from_directory() {
    let dir = tmp_dir("model");
    write_tiny_model(&dir, 4).unwrap();
    let from_dir = Arc::new(load_model(&dir, &LoadOptions::default()).unwrap());
    let files = tiny_model_files(4).unwrap();
    for name in files.names() {
        assert_eq!(files.get(name).unwrap(), std::fs::read(dir.join(name)).unwrap(), "{name}");
    }
    let from_mem = Arc::new(load_model_from_files(&files, &LoadOptions::default()).unwrap());
    assert_eq!(from_mem.tokenizer.as_ref().unwrap().encode("hi there", true).unwrap(), from_dir.tokenizer.as_ref().unwrap().encode("hi there", true).unwrap());
    assert_eq!(logits(from_mem), logits(from_dir.clone()));

    // The same weights split into two shards behind an index.
    let all = load_buffer(files.get("model.safetensors").unwrap(), &Device::Cpu).unwrap();
    let (mut a, mut b): (HashMap<String, Tensor>, HashMap<String, Tensor>) = (HashMap::new(), HashMap::new());
    let mut weight_map = serde_json::Map::new();
    for (i, (k, v)) in all.into_iter().enumerate() {
        let shard = if i % 2 == 0 { "model-00001-of-00002.safetensors" } else { "model-00002-of-00002.safetensors" };
        weight_map.insert(k.clone(), shard.into());
        if i % 2 == 0 { a.insert(k, v) } else { b.insert(k, v) };
    }
    let mut sharded = files.clone();
    sharded.remove("model.safetensors");
    let bytes = |m: &HashMap<String, Tensor>| safetensors::tensor::serialize(m, None).unwrap();
    sharded.insert("model-00001-of-00002.safetensors", bytes(&a));
    sharded.insert("model-00002-of-00002.safetensors", bytes(&b));
    sharded.insert("model.safetensors.index.json", serde_json::json!({ "weight_map": weight_map }).to_string().into_bytes());
    let from_shards = Arc::new(load_model_from_files(&sharded, &LoadOptions::default()).unwrap());
    assert_eq!(logits(from_shards), logits(from_dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn encoder_loads_from_files() {
    let m = load_model_from_files(&tiny_encoder_files(2, Some(3)).unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(m.architecture(), "bert");
    assert_eq!(m.encoder().unwrap().cfg.num_labels, Some(3));
}

#[test]
fn missing_or_ambiguous_files_fail_with_stable_codes() {
    let opts = LoadOptions::default();
    let mut files = tiny_model_files(0).unwrap();
    files.remove("config.json");
    assert_eq!(load_model_from_files(&files, &opts).err().unwrap().code(), "ERR_IO");
    let mut files = tiny_model_files(0).unwrap();
    files.remove("model.safetensors");
    assert_eq!(load_model_from_files(&files, &opts).err().unwrap().code(), "ERR_FORMAT");
    let two: FileMap = [("a.gguf".to_string(), vec![0u8; 8]), ("b.gguf".to_string(), vec![0u8; 8])].into_iter().collect();
    assert_eq!(load_model_from_files(&two, &opts).err().unwrap().code(), "ERR_UNSUPPORTED_MODEL");
    let one: FileMap = [("x.gguf".to_string(), b"not gguf".to_vec())].into_iter().collect();
    assert_eq!(load_model_from_files(&one, &opts).err().unwrap().code(), "ERR_FORMAT");
}

#[test]
fn checkpoint_files_round_trip_and_match_save() {
    let base = common::model(candle_core::DType::F32);
    let specs = [spec(Kind::Loreft, 0, Component::BlockOutput), spec(Kind::DireftOrth, 1, Component::MlpOutput)];
    let mut m = ReftModel::new(base.clone(), &specs, 9).unwrap();
    let b = batch(2);
    m.train_step(std::slice::from_ref(&b), &StepOptions { lr: 1e-2, ..Default::default() }).unwrap();
    m.metadata = Some(serde_json::json!({ "note": 1 }));
    let files = m.to_files(true).unwrap();
    assert_eq!(files.names().collect::<Vec<_>>(), ["interventions.safetensors", "optimizer.safetensors", "reft_config.json"]);

    let dir = tmp_dir("ckpt");
    m.save(&dir, true).unwrap();
    for name in files.names() {
        assert_eq!(files.get(name).unwrap(), std::fs::read(dir.join(name)).unwrap(), "{name}");
    }
    let mut loaded = ReftModel::from_files(base.clone(), &files, true).unwrap();
    assert_eq!(loaded.metadata, m.metadata);
    let out = |r: &ReftModel| -> Vec<f32> { r.forward(&b, true).unwrap().logits.unwrap().flatten_all().unwrap().to_vec1().unwrap() };
    assert_eq!(max_abs_diff(&out(&loaded), &out(&m)), 0.0);
    let opts = StepOptions { lr: 1e-2, ..Default::default() };
    let (s1, s2) = (m.train_step(std::slice::from_ref(&b), &opts).unwrap(), loaded.train_step(std::slice::from_ref(&b), &opts).unwrap());
    assert_eq!((s1.loss, s1.step), (s2.loss, s2.step));

    let mut partial = files.clone();
    partial.remove("interventions.safetensors");
    assert_eq!(ReftModel::from_files(base, &partial, false).err().unwrap().code(), "ERR_IO");
    let _ = std::fs::remove_dir_all(&dir);
}
