//! Loader parity for the Llama family beyond plain Llama: Qwen2 (q/k/v bias, sharded
//! safetensors index), Mistral (sliding-window attention) and Llama with llama3 rope scaling and
//! tied embeddings — logits against transformers (`scripts/make_arch_fixtures.py`), in both the
//! newer `rope_parameters` and the classic top-level `rope_theta` / `rope_scaling` config styles.

use candle_core::Device;
use reft_core::models::{load_model, LoadOptions};
use reft_core::{Batch, ReftModel};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arch")
}

fn check(model_dir: &Path, key: &str) {
    let t = candle_core::safetensors::load(dir().join("logits.safetensors"), &Device::Cpu).unwrap();
    let ids: Vec<i64> = t["input_ids"].flatten_all().unwrap().to_vec1().unwrap();
    let mask: Vec<i64> = t["attention_mask"].flatten_all().unwrap().to_vec1().unwrap();
    let (b, s) = t["input_ids"].dims2().unwrap();
    let base = Arc::new(load_model(model_dir, &LoadOptions::default()).unwrap());
    let m = ReftModel::new(base, &[], 0).unwrap();
    let batch = Batch {
        input_ids: ids.iter().map(|&x| x as u32).collect(),
        batch_size: b,
        seq_len: s,
        attention_mask: Some(mask.iter().map(|&x| x as u8).collect()),
        ..Default::default()
    };
    let ours: Vec<f32> = m.forward(&batch, true).unwrap().logits.unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = t[&format!("{key}.logits")].flatten_all().unwrap().to_vec1().unwrap();
    let v = want.len() / (b * s);
    let scale = want.iter().map(|x| x.abs()).fold(0f32, f32::max);
    for (i, (a, w)) in ours.iter().zip(&want).enumerate() {
        if mask[i / v] == 0 {
            continue;
        }
        assert!((a - w).abs() <= 1e-4 * scale, "{key} logit {i}: ours {a} vs transformers {w}");
    }
}

#[test]
fn qwen2_mistral_and_llama3_scaling_match_transformers() {
    for name in ["tiny-qwen2", "tiny-mistral", "tiny-llama3-scaled"] {
        check(&dir().join(name), name);
    }
}

#[test]
fn classic_config_style_is_read_too() {
    // Rewrite `rope_parameters` into the pre-5.x top-level `rope_theta` + `rope_scaling`.
    let src = dir().join("tiny-llama3-scaled");
    let dst = std::env::temp_dir().join(format!("reft-classic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src.join("model.safetensors"), dst.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let rp = cfg.as_object_mut().unwrap().remove("rope_parameters").unwrap();
    cfg["rope_theta"] = rp["rope_theta"].clone();
    let mut scaling = rp.clone();
    scaling.as_object_mut().unwrap().remove("rope_theta");
    cfg["rope_scaling"] = scaling;
    std::fs::write(dst.join("config.json"), cfg.to_string()).unwrap();
    check(&dst, "tiny-llama3-scaled");
    std::fs::remove_dir_all(&dst).unwrap();
}

#[test]
fn unsupported_and_broken_models_give_coded_errors() {
    let d = std::env::temp_dir().join(format!("reft-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.json"), r#"{"model_type":"gpt2","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":1,"vocab_size":8}"#).unwrap();
    let code = |p: &Path| load_model(p, &LoadOptions::default()).err().map(|e| e.code()).unwrap_or("ok");
    assert_eq!(code(&d), "ERR_UNSUPPORTED_MODEL");
    std::fs::write(d.join("config.json"), "{ not json").unwrap();
    assert_eq!(code(&d), "ERR_FORMAT");
    std::fs::copy(dir().join("tiny-mistral/config.json"), d.join("config.json")).unwrap();
    assert_eq!(code(&d), "ERR_FORMAT", "config without weights");
    let bytes = std::fs::read(dir().join("tiny-mistral/model.safetensors")).unwrap();
    std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 3]).unwrap();
    assert_eq!(code(&d), "ERR_FORMAT", "truncated weights");
    assert_eq!(code(&d.join("missing")), "ERR_IO");
    std::fs::write(d.join("x.bin"), b"abc").unwrap();
    assert_eq!(code(&d.join("x.bin")), "ERR_UNSUPPORTED_MODEL");
    std::fs::write(d.join("x.gguf"), b"not a gguf file").unwrap();
    assert_eq!(code(&d.join("x.gguf")), "ERR_FORMAT");
    std::fs::remove_dir_all(&d).unwrap();
}
