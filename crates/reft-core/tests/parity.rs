//! Parity with pyreft: fixtures written by `scripts/make_fixtures.py` (pyreft 0.1.0 / pyvene
//! 0.1.8 on torch 2.11, transformers 5.17; see `tests/fixtures/pyreft/manifest.json`) on a tiny
//! random Llama saved with `save_pretrained`. For every intervention kind and component we load
//! pyreft's exact parameters and compare logits, loss and gradients (the rotation's ambient
//! gradient ∂L/∂Rc) to 1e-4 relative.

use candle_core::{DType, Device, Tensor, Var};
use reft_core::interventions::rotation::Rotation;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{load_model, Component, LoadOptions};
use reft_core::{Batch, ReftModel};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Relative tolerance on logits, loss and gradients.
const RTOL: f64 = 1e-4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyreft")
}

fn load_case(name: &str) -> (HashMap<String, Tensor>, serde_json::Value) {
    let t = candle_core::safetensors::load(dir().join(format!("cases/{name}.safetensors")), &Device::Cpu).unwrap();
    let j = serde_json::from_str(&std::fs::read_to_string(dir().join(format!("cases/{name}.json"))).unwrap()).unwrap();
    (t, j)
}

fn kind_of(class: &str) -> Kind {
    reft_core::pyreft_import::kind_from_class(class).unwrap_or_else(|| panic!("unknown class {class}"))
}

fn i64s(t: &Tensor) -> Vec<i64> {
    t.flatten_all().unwrap().to_dtype(DType::I64).unwrap().to_vec1().unwrap()
}

fn batch_of(t: &HashMap<String, Tensor>) -> Batch {
    let (b, s) = t["input_ids"].dims2().unwrap();
    let pos = &t["positions"];
    Batch {
        input_ids: i64s(&t["input_ids"]).into_iter().map(|x| x as u32).collect(),
        batch_size: b,
        seq_len: s,
        attention_mask: Some(i64s(&t["attention_mask"]).into_iter().map(|x| x as u8).collect()),
        positions: Some(i64s(pos)),
        num_positions: pos.dims()[2],
        labels: t.get("labels").map(i64s),
        ..Default::default()
    }
}

/// Builds our model with pyreft's parameters; rotations get an ambient probe Var.
fn build(name: &str) -> (ReftModel, HashMap<String, Tensor>, Vec<(String, Var)>) {
    let (t, j) = load_case(name);
    let base = Arc::new(load_model(&dir().join(j["model"].as_str().unwrap()), &LoadOptions::default()).unwrap());
    let kind = kind_of(j["intervention_class"].as_str().unwrap());
    let layers: Vec<usize> = j["layers"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let comps: Vec<Component> = j["components"].as_array().unwrap().iter().map(|c| Component::parse(c.as_str().unwrap()).unwrap()).collect();
    let rank = j["rank"].as_u64().unwrap() as usize;
    let specs: Vec<InterventionSpec> = layers
        .iter()
        .zip(&comps)
        .map(|(&layer, &component)| InterventionSpec { kind, layer, component, rank, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let mut m = ReftModel::new(base, &specs, 0).unwrap();
    let mut probes = Vec::new();
    for (i, iv) in m.interventions.iter_mut().enumerate() {
        if let Some(rot) = iv.rotation_mut() {
            let rc = &t[&format!("int{i}.rotate_layer")];
            *rot = Rotation::from_initial(rc).unwrap();
            let probe = Var::from_tensor(rc).unwrap();
            rot.probe = Some(probe.clone());
            probes.push((format!("int{i}.rotate_layer"), probe));
        }
        for (n, v) in iv.params() {
            if n == "rotation.a" {
                continue;
            }
            let key = format!("int{i}.{n}");
            v.set(&t[&key]).unwrap_or_else(|e| panic!("{name}: {key}: {e}"));
            probes.push((key, v));
        }
    }
    (m, t, probes)
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_close_tol(what, ours, theirs, RTOL)
}

fn assert_close_tol(what: &str, ours: &[f32], theirs: &[f32], rtol: f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let scale = theirs.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1e-6) as f64;
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let err = (*a as f64 - *b as f64).abs();
        assert!(err <= rtol * scale.max(b.abs() as f64), "{what}[{k}]: ours {a} vs pyreft {b} (scale {scale})");
    }
}

fn check_case(name: &str) {
    let (m, t, probes) = build(name);
    let batch = batch_of(&t);
    let out = m.forward(&batch, true).unwrap();
    // Logits at real tokens (HF's values at padding depend on its masking implementation).
    let logits: Vec<f32> = out.logits.unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = t["logits"].flatten_all().unwrap().to_vec1().unwrap();
    let mask = batch.attention_mask.clone().unwrap();
    let v = want.len() / mask.len();
    let keep = |x: &[f32]| -> Vec<f32> {
        x.chunks(v).zip(&mask).filter(|(_, &m)| m == 1).flat_map(|(c, _)| c.to_vec()).collect()
    };
    assert_close(&format!("{name} logits"), &keep(&logits), &keep(&want));
    let loss = out.loss.unwrap();
    let want_loss = t["loss"].to_scalar::<f32>().unwrap() as f64;
    assert!((loss - want_loss).abs() <= RTOL * want_loss.abs(), "{name} loss {loss} vs {want_loss}");
    let store = m.loss_graph(&batch).unwrap().backward().unwrap();
    for (key, var) in probes {
        let g: Vec<f32> = store.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no grad for {key}")).flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f32> = t[&format!("grad.{key}")].flatten_all().unwrap().to_vec1().unwrap();
        assert_close(&format!("{name} grad {key}"), &g, &want);
    }
}

#[test]
fn base_model_logits_match_transformers() {
    let t = candle_core::safetensors::load(dir().join("cases/base.safetensors"), &Device::Cpu).unwrap();
    for (model, key) in [("tiny-llama", "logits"), ("tiny-llama-tied", "tied_logits")] {
        let base = Arc::new(load_model(&dir().join(model), &LoadOptions::default()).unwrap());
        let m = ReftModel::new(base, &[], 0).unwrap();
        let mut batch = batch_of(&{
            let mut t2 = t.clone();
            t2.insert("positions".into(), Tensor::zeros((0, 3, 1), DType::I64, &Device::Cpu).unwrap());
            t2
        });
        batch.positions = None;
        let out = m.forward(&batch, true).unwrap();
        let logits: Vec<f32> = out.logits.unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f32> = t[key].flatten_all().unwrap().to_vec1().unwrap();
        let mask = batch.attention_mask.clone().unwrap();
        let v = want.len() / mask.len();
        let keep = |x: &[f32]| -> Vec<f32> { x.chunks(v).zip(&mask).filter(|(_, &m)| m == 1).flat_map(|(c, _)| c.to_vec()).collect() };
        assert_close(model, &keep(&logits), &keep(&want));
    }
}

#[test]
fn every_kind_matches_pyreft() {
    for name in ["loreft", "nodireft", "direft", "noreft", "consreft", "lobireft"] {
        check_case(name);
    }
}

#[test]
fn components_and_stacked_interventions_match_pyreft() {
    for name in ["loreft_multi", "loreft_block_input", "loreft_mlp_output", "loreft_attention_output"] {
        check_case(name);
    }
}

/// Greedy generation with a LoReFT on prompt positions (left-padded batch): the same tokens as
/// pyreft's `generate(intervene_on_prompt=True)`, with and without our KV cache.
#[test]
fn generation_matches_pyreft() {
    use reft_core::generate::GenerateOptions;
    for name in ["gen_loreft_last", "gen_loreft_first_last"] {
        let t = candle_core::safetensors::load(dir().join(format!("gen/{name}.safetensors")), &Device::Cpu).unwrap();
        let base = Arc::new(load_model(&dir().join("tiny-llama"), &LoadOptions::default()).unwrap());
        let spec = InterventionSpec { kind: Kind::Loreft, layer: 1, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: false };
        let mut m = ReftModel::new(base.clone(), &[spec], 0).unwrap();
        {
            let iv = &mut m.interventions[0];
            *iv.rotation_mut().unwrap() = Rotation::from_initial(&t["int0.rotate_layer"]).unwrap();
            for (n, v) in iv.params() {
                if n != "rotation.a" {
                    v.set(&t[&format!("int0.{n}")]).unwrap();
                }
            }
        }
        let prompts = batch_of(&t);
        let (b, s) = (prompts.batch_size, prompts.seq_len);
        let want = i64s(&t["generated_ids"]);
        let total = want.len() / b;
        for use_cache in [true, false] {
            let o = GenerateOptions { max_new_tokens: total - s, use_cache, ..Default::default() };
            let got = m.generate(&prompts, &o, &mut |_| true).unwrap();
            for r in 0..b {
                let w: Vec<u32> = want[r * total + s..(r + 1) * total].iter().map(|&x| x as u32).collect();
                assert_eq!(got[r], w, "{name} row {r} (cache {use_cache})");
            }
        }
        // And the bare model reproduces HF's plain generate.
        let bare = ReftModel::new(base, &[], 0).unwrap();
        let mut plain = prompts.clone();
        plain.positions = None;
        let want = i64s(&t["base_generated_ids"]);
        let got = bare.generate(&plain, &GenerateOptions { max_new_tokens: total - s, ..Default::default() }, &mut |_| true).unwrap();
        for r in 0..b {
            let w: Vec<u32> = want[r * total + s..(r + 1) * total].iter().map(|&x| x as u32).collect();
            assert_eq!(got[r], w, "{name} base row {r}");
        }
    }
}

/// Takes the fixture's 5 AdamW steps (lr 1e-2, no clipping) on its batch, asserting each loss
/// against pyreft's; returns the batch.
fn follow_pyreft_losses(m: &mut ReftModel, t: &HashMap<String, Tensor>) -> Batch {
    use reft_core::train::StepOptions;
    let batch = batch_of(t);
    let want: Vec<f32> = t["losses"].to_vec1().unwrap();
    let opts = StepOptions { lr: 1e-2, max_grad_norm: 0.0, ..Default::default() };
    for (k, w) in want.iter().enumerate() {
        let stats = m.train_step(std::slice::from_ref(&batch), &opts).unwrap();
        assert!((stats.loss - *w as f64).abs() < 1e-4 * *w as f64, "step {k}: loss {} vs pyreft {w}", stats.loss);
    }
    batch
}

/// The loss after the steps equals pyreft's `final_loss`.
fn assert_final_loss(m: &ReftModel, batch: &Batch, t: &HashMap<String, Tensor>, what: &str) {
    let final_loss = m.forward(batch, false).unwrap().loss.unwrap();
    let want_final = t["final_loss"].to_scalar::<f32>().unwrap() as f64;
    assert!((final_loss - want_final).abs() < 1e-4 * want_final, "{what}: final {final_loss} vs {want_final}");
}

/// NodiReFT has no constraint, so 5 AdamW steps from pyreft's initial parameters must give
/// pyreft's loss trajectory and final parameters.
#[test]
fn nodireft_training_trajectory_matches_pyreft() {
    let t = candle_core::safetensors::load(dir().join("train/train_nodireft.safetensors"), &Device::Cpu).unwrap();
    let base = Arc::new(load_model(&dir().join("tiny-llama"), &LoadOptions::default()).unwrap());
    let specs: Vec<InterventionSpec> = [0usize, 2]
        .iter()
        .map(|&layer| InterventionSpec { kind: Kind::Direft, layer, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: false })
        .collect();
    let mut m = ReftModel::new(base, &specs, 0).unwrap();
    for (i, iv) in m.interventions.iter().enumerate() {
        for (n, v) in iv.params() {
            v.set(&t[&format!("init.int{i}.{n}")]).unwrap();
        }
    }
    let batch = follow_pyreft_losses(&mut m, &t);
    assert_final_loss(&m, &batch, &t, "trained");
    for (i, iv) in m.interventions.iter().enumerate() {
        for (n, v) in iv.params() {
            let got: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let w: Vec<f32> = t[&format!("final.int{i}.{n}")].flatten_all().unwrap().to_vec1().unwrap();
            assert_close(&format!("final int{i}.{n}"), &got, &w);
        }
    }
}

/// LoReFT trains `R` through torch's orthogonal parametrization, whose fixed base is a random
/// completion. Given that same base (and `A = tril(original, -1)`), 5 AdamW steps from pyreft's
/// initial parameters must give pyreft's losses and final parameters, `R` included: the
/// trajectory, not only the gradient, is pyreft's. The base travels through a checkpoint too.
#[test]
fn loreft_training_trajectory_matches_pyreft_given_its_base() {
    let t = candle_core::safetensors::load(dir().join("train/train_loreft.safetensors"), &Device::Cpu).unwrap();
    let base = Arc::new(load_model(&dir().join("tiny-llama"), &LoadOptions::default()).unwrap());
    let specs: Vec<InterventionSpec> = [0usize, 2]
        .iter()
        .map(|&layer| InterventionSpec { kind: Kind::Loreft, layer, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: true })
        .collect();
    let mut m = ReftModel::new(base.clone(), &specs, 0).unwrap();
    for (i, iv) in m.interventions.iter_mut().enumerate() {
        let original = &t[&format!("init.int{i}.householder_original")];
        // torch's "-Id" start: the diagonal is -1 and is never trained; only tril(-1) is A.
        let diag: Vec<f32> = (0..4).map(|k| original.get(k).unwrap().get(k).unwrap().to_scalar::<f32>().unwrap()).collect();
        assert_eq!(diag, vec![-1.0; 4], "int{i}: original's diagonal");
        let rot = Rotation::with_dense_base(&t[&format!("init.int{i}.householder_base")], 4).unwrap();
        let d = original.dims()[0];
        let mask: Vec<f32> = (0..d * 4).map(|k| if k / 4 > k % 4 { 1.0 } else { 0.0 }).collect();
        rot.a.set(&original.mul(&Tensor::from_vec(mask, (d, 4), &Device::Cpu).unwrap()).unwrap()).unwrap();
        let r0: Vec<f32> = rot.matrix(false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f32> = t[&format!("init.int{i}.rotate_layer")].flatten_all().unwrap().to_vec1().unwrap();
        assert_close(&format!("init int{i}.rotate_layer"), &r0, &want);
        *iv.rotation_mut().unwrap() = rot;
        for (n, v) in iv.params() {
            if n != "rotation.a" {
                v.set(&t[&format!("init.int{i}.{n}")]).unwrap();
            }
        }
    }
    let batch = follow_pyreft_losses(&mut m, &t);
    // Parameters after 5 Adam steps: Adam divides by √v, so coordinates whose gradients are near
    // zero carry float32 differences of the rotation's evaluation order into their update
    // (2.4e-5 seen against a movement of up to 5e-2); 5e-4 of the scale, 10× the losses' bound.
    let check = |m: &ReftModel, what: &str| {
        assert_final_loss(m, &batch, &t, what);
        for (i, iv) in m.interventions.iter().enumerate() {
            let rc: Vec<f32> = iv.rotation().unwrap().matrix(false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let w: Vec<f32> = t[&format!("final.int{i}.rotate_layer")].flatten_all().unwrap().to_vec1().unwrap();
            assert_close_tol(&format!("{what}: final int{i}.rotate_layer"), &rc, &w, 5e-4);
            for (n, v) in iv.params() {
                if n != "rotation.a" {
                    let got: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                    let w: Vec<f32> = t[&format!("final.int{i}.{n}")].flatten_all().unwrap().to_vec1().unwrap();
                    assert_close_tol(&format!("{what}: final int{i}.{n}"), &got, &w, 5e-4);
                }
            }
        }
    };
    check(&m, "trained");
    let tmp = std::env::temp_dir().join(format!("reft-dense-base-{}", std::process::id()));
    m.save(&tmp, false).unwrap();
    let back = ReftModel::load(base, &tmp, false).unwrap();
    std::fs::remove_dir_all(&tmp).ok();
    assert!(back.interventions.iter().all(|iv| iv.rotation().unwrap().dense_base.is_some()), "the dense base must survive a checkpoint");
    check(&back, "reloaded");
}

/// pyreft-saved directories (both key eras) load and give pyreft's loss, from the directory and
/// from its files in memory (as WebAssembly loads them).
#[test]
fn pyreft_saved_directories_import() {
    use reft_core::pyreft_import::{is_pyreft_files, load_pyreft, load_pyreft_files};
    for (saved, case) in [("loreft", "loreft"), ("loreft_oldkeys", "loreft"), ("nodireft", "nodireft")] {
        let (t, j) = load_case(case);
        let base = Arc::new(load_model(&dir().join(j["model"].as_str().unwrap()), &LoadOptions::default()).unwrap());
        let path = dir().join("saved").join(saved);
        let mut files = reft_core::FileMap::new();
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            files.insert(entry.file_name().to_string_lossy().to_string(), std::fs::read(entry.path()).unwrap());
        }
        assert!(is_pyreft_files(&files), "{saved}: not recognised as a pyreft adapter");
        for (from, m) in [("directory", load_pyreft(base.clone(), &path).unwrap()), ("memory", load_pyreft_files(base.clone(), &files).unwrap())] {
            assert_eq!(m.interventions.len(), 2);
            let batch = batch_of(&t);
            let out = m.forward(&batch, false).unwrap();
            let want = t["loss"].to_scalar::<f32>().unwrap() as f64;
            assert!((out.loss.unwrap() - want).abs() < RTOL * want, "{saved} from {from}: loss {} vs {want}", out.loss.unwrap());
        }
        // A missing intervention file is an error that names it.
        let name = files.names().find(|n| n.starts_with("intkey_")).unwrap().to_string();
        files.remove(&name);
        let e = load_pyreft_files(base, &files).err().expect("a missing intkey file must fail");
        assert_eq!(e.code(), "ERR_IO", "{e}");
        assert!(e.to_string().contains(&name), "{e}");
    }
}
