//! Tiny random models for tests, examples and the Node test-suite (no downloads needed).
//!
//! `tiny_decoder` builds one in memory (any dtype, including f64 for gradient checks);
//! `write_tiny_model` writes an HF-style directory (`config.json`, `model.safetensors`,
//! `tokenizer.json` with a byte-level BPE of 256 byte tokens plus `<s>`, `</s>`, `<pad>`);
//! `tiny_model_files` / `tiny_encoder_files` give the same files in memory (WebAssembly tests).

use crate::error::{ReftError, Result};
use crate::files::FileMap;
use crate::models::config::{Architecture, DecoderConfig};
use crate::models::llama::{Decoder, LayerWeights};
use crate::models::Model;
use crate::ops::FrozenLinear;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// A small Llama shape: hidden 32, 2 layers, 4 heads / 2 kv heads, vocab 259.
pub fn tiny_config() -> DecoderConfig {
    DecoderConfig {
        architecture: Architecture::Llama,
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        vocab_size: 259,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 256,
        tie_word_embeddings: false,
        attention_bias: false,
        sliding_window: None,
        bos_token_id: Some(256),
        eos_token_ids: vec![257],
        pad_token_id: Some(258),
    }
}

/// Every decoder weight as (name, shape, scale, offset): values are `offset + scale·U(−1, 1)`.
fn weight_specs(cfg: &DecoderConfig) -> Vec<(String, Vec<usize>, f64, f64)> {
    let (d, f, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (q, kv) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
    let s = 1.0 / (d as f64).sqrt();
    let mut w = vec![("model.embed_tokens.weight".to_string(), vec![cfg.vocab_size, d], 1.0, 0.0)];
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}");
        w.push((format!("{p}.input_layernorm.weight"), vec![d], 0.2, 1.0));
        w.push((format!("{p}.self_attn.q_proj.weight"), vec![q, d], s * 2.0, 0.0));
        w.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d], s * 2.0, 0.0));
        w.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d], s, 0.0));
        w.push((format!("{p}.self_attn.o_proj.weight"), vec![d, q], s, 0.0));
        w.push((format!("{p}.post_attention_layernorm.weight"), vec![d], 0.2, 1.0));
        w.push((format!("{p}.mlp.gate_proj.weight"), vec![f, d], s, 0.0));
        w.push((format!("{p}.mlp.up_proj.weight"), vec![f, d], s, 0.0));
        w.push((format!("{p}.mlp.down_proj.weight"), vec![d, f], 1.0 / (f as f64).sqrt(), 0.0));
    }
    w.push(("model.norm.weight".into(), vec![d], 0.2, 1.0));
    w.push(("lm_head.weight".into(), vec![cfg.vocab_size, d], s * 4.0, 0.0));
    w
}

/// The weights from a seeded CPU generator: identical on every machine (tests compare them).
fn weights(cfg: &DecoderConfig, seed: u64) -> Result<Vec<(String, Tensor)>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    weight_specs(cfg)
        .into_iter()
        .map(|(name, shape, scale, offset)| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| (offset + scale * (rng.gen::<f64>() * 2.0 - 1.0)) as f32).collect();
            Ok((name, Tensor::from_vec(v, shape, &Device::Cpu)?))
        })
        .collect()
}

fn decoder_from(cfg: &DecoderConfig, map: HashMap<String, Tensor>, device: &Device, dtype: DType) -> Decoder {
    let g = |k: &str| map[k].clone();
    let lin = |k: &str| FrozenLinear::new(g(&format!("{k}.weight")), None);
    let layers = (0..cfg.num_layers)
        .map(|l| {
            let p = format!("model.layers.{l}");
            LayerWeights {
                input_norm: g(&format!("{p}.input_layernorm.weight")),
                q: lin(&format!("{p}.self_attn.q_proj")),
                k: lin(&format!("{p}.self_attn.k_proj")),
                v: lin(&format!("{p}.self_attn.v_proj")),
                o: lin(&format!("{p}.self_attn.o_proj")),
                post_norm: g(&format!("{p}.post_attention_layernorm.weight")),
                gate: lin(&format!("{p}.mlp.gate_proj")),
                up: lin(&format!("{p}.mlp.up_proj")),
                down: lin(&format!("{p}.mlp.down_proj")),
                packed: None,
            }
        })
        .collect();
    Decoder {
        cfg: cfg.clone(),
        embed: g("model.embed_tokens.weight"),
        layers,
        norm: g("model.norm.weight"),
        lm_head: g("lm_head.weight"),
        inv_freq: cfg.inv_freq(),
        device: device.clone(),
        dtype,
    }
}

/// An in-memory random decoder on the CPU (deterministic in `seed`).
pub fn tiny_decoder(cfg: &DecoderConfig, dtype: DType, seed: u64) -> Result<Decoder> {
    let map: HashMap<String, Tensor> = weights(cfg, seed)?
        .into_iter()
        .map(|(k, v)| v.to_dtype(dtype).map(|v| (k, v)))
        .collect::<candle_core::Result<_>>()?;
    Ok(decoder_from(cfg, map, &Device::Cpu, dtype).packed_if_on()?)
}

/// A random decoder of any size, generated on `device` (the device's own generator, seeded
/// with `seed`): the benchmarks' 1B and 7B shapes, where a host-side generator would take
/// minutes and a second copy of the weights. Step time does not depend on the values.
/// On the CPU (whose candle generator cannot be seeded) it is [`tiny_decoder`].
pub fn random_decoder(cfg: &DecoderConfig, dtype: DType, device: &Device, seed: u64) -> Result<Decoder> {
    if device.is_cpu() {
        return tiny_decoder(cfg, dtype, seed);
    }
    device.set_seed(seed)?;
    let mut map = HashMap::new();
    for (name, shape, scale, offset) in weight_specs(cfg) {
        let u = Tensor::rand(-1f32, 1f32, shape, device)?;
        map.insert(name, ((u * scale)? + offset)?.to_dtype(dtype)?);
    }
    Ok(decoder_from(cfg, map, device, dtype).packed_if_on()?)
}

/// `n` token ids in `3..vocab` from a 64-bit LCG started at `seed`: the benchmarks' batches.
/// `benches/pyreft_step.py` runs the same generator, so both sides see identical ids.
pub fn lcg_token_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (3 + (x >> 33) as usize % (vocab - 3)) as u32
        })
        .collect()
}

/// An in-memory tiny [`Model`] without tokenizer.
pub fn tiny_model(dtype: DType, seed: u64) -> Result<Model> {
    Ok(Model { backbone: crate::models::Backbone::Decoder(tiny_decoder(&tiny_config(), dtype, seed)?), tokenizer: None, source: "hf" })
}

/// Writes a tiny random model as an HF directory, with a byte-level `tokenizer.json`.
pub fn write_tiny_model(dir: &Path, seed: u64) -> Result<()> {
    tiny_model_files(seed)?.write_to_dir(dir)
}

/// The files of [`write_tiny_model`] in memory (`config.json`, `model.safetensors`,
/// `tokenizer.json`).
pub fn tiny_model_files(seed: u64) -> Result<FileMap> {
    let cfg = tiny_config();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads, "vocab_size": cfg.vocab_size,
        "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.max_position_embeddings, "tie_word_embeddings": false,
        "bos_token_id": 256, "eos_token_id": 257, "pad_token_id": 258
    });
    let map: HashMap<String, Tensor> = weights(&cfg, seed)?.into_iter().collect();
    let mut files = FileMap::new();
    files.insert("config.json", serde_json::to_string_pretty(&config).unwrap_or_default().into_bytes());
    files.insert("model.safetensors", safetensors_bytes(&map)?);
    files.insert("tokenizer.json", byte_tokenizer_json()?);
    Ok(files)
}

fn safetensors_bytes(map: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    Ok(safetensors::tensor::serialize(map, None).map_err(candle_core::Error::from)?)
}

fn tokenizer_json(tok: &tokenizers::Tokenizer) -> Result<Vec<u8>> {
    tok.to_string(false).map(String::into_bytes).map_err(|e| ReftError::config("tokenizer", e.to_string()))
}

fn byte_tokenizer_json() -> Result<Vec<u8>> {
    use tokenizers::decoders::byte_level::ByteLevel as Dec;
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, Tokenizer};
    let mut vocab = tokenizers::models::bpe::Vocab::default();
    // The alphabet is a HashSet: sort it so ids are deterministic.
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    for (i, ch) in alphabet.into_iter().enumerate() {
        vocab.insert(ch.to_string(), i as u32);
    }
    let bpe = BPE::builder().vocab_and_merges(vocab, vec![]).build().map_err(|e| ReftError::config("tokenizer", e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(Dec::default()));
    tok.add_special_tokens(&[AddedToken::from("<s>", true), AddedToken::from("</s>", true), AddedToken::from("<pad>", true)]);
    tokenizer_json(&tok)
}

/// Writes a tiny random BERT (hidden 32, 2 layers, 4 heads, 2 token types) as an HF directory
/// with a character-level WordPiece `tokenizer.json` (`[CLS] a [SEP] b [SEP]` templates, lower
/// casing). With `num_labels`, a random `classifier` as `BertForSequenceClassification` stores.
pub fn write_tiny_encoder(dir: &Path, seed: u64, num_labels: Option<usize>) -> Result<()> {
    tiny_encoder_files(seed, num_labels)?.write_to_dir(dir)
}

/// The files of [`write_tiny_encoder`] in memory.
pub fn tiny_encoder_files(seed: u64, num_labels: Option<usize>) -> Result<FileMap> {
    use rand::{Rng, SeedableRng};
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let chars: Vec<String> = ('a'..='z').chain('0'..='9').map(String::from).chain([".", ",", "!", "?", "'"].map(String::from)).collect();
    let mut vocab: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    vocab.extend(chars.iter().cloned());
    vocab.extend(chars.iter().map(|c| format!("##{c}")));
    let (d, f, layers, positions) = (32usize, 64usize, 2usize, 128usize);
    let mut config = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": d,
        "intermediate_size": f, "num_hidden_layers": layers, "num_attention_heads": 4,
        "vocab_size": vocab.len(), "max_position_embeddings": positions, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0
    });
    if let Some(k) = num_labels {
        config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
        config["num_labels"] = serde_json::json!(k);
    }
    let mut files = FileMap::new();
    files.insert("config.json", serde_json::to_string_pretty(&config).unwrap_or_default().into_bytes());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut map: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize], scale: f64, offset: f64| -> Result<()> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| (offset + scale * (rng.gen::<f64>() * 2.0 - 1.0)) as f32).collect();
        map.insert(name, Tensor::from_vec(v, shape, &Device::Cpu)?);
        Ok(())
    };
    let s = 1.0 / (d as f64).sqrt();
    let lin = |put: &mut dyn FnMut(String, &[usize], f64, f64) -> Result<()>, name: &str, o: usize, i: usize| -> Result<()> {
        put(format!("{name}.weight"), &[o, i], 1.0 / (i as f64).sqrt(), 0.0)?;
        put(format!("{name}.bias"), &[o], 0.1, 0.0)
    };
    let norm = |put: &mut dyn FnMut(String, &[usize], f64, f64) -> Result<()>, name: &str| -> Result<()> {
        put(format!("{name}.LayerNorm.weight"), &[d], 0.2, 1.0)?;
        put(format!("{name}.LayerNorm.bias"), &[d], 0.1, 0.0)
    };
    put("bert.embeddings.word_embeddings.weight".into(), &[vocab.len(), d], 1.0, 0.0)?;
    put("bert.embeddings.position_embeddings.weight".into(), &[positions, d], 0.3, 0.0)?;
    put("bert.embeddings.token_type_embeddings.weight".into(), &[2, d], 0.3, 0.0)?;
    norm(&mut put, "bert.embeddings")?;
    for l in 0..layers {
        let p = format!("bert.encoder.layer.{l}");
        for n in ["query", "key", "value"] {
            lin(&mut put, &format!("{p}.attention.self.{n}"), d, d)?;
        }
        lin(&mut put, &format!("{p}.attention.output.dense"), d, d)?;
        norm(&mut put, &format!("{p}.attention.output"))?;
        lin(&mut put, &format!("{p}.intermediate.dense"), f, d)?;
        lin(&mut put, &format!("{p}.output.dense"), d, f)?;
        norm(&mut put, &format!("{p}.output"))?;
    }
    lin(&mut put, "bert.pooler.dense", d, d)?;
    if let Some(k) = num_labels {
        put("classifier.weight".into(), &[k, d], s, 0.0)?;
        put("classifier.bias".into(), &[k], 0.1, 0.0)?;
    }
    files.insert("model.safetensors", safetensors_bytes(&map)?);
    files.insert("tokenizer.json", wordpiece_tokenizer_json(&vocab)?);
    Ok(files)
}

fn wordpiece_tokenizer_json(vocab: &[String]) -> Result<Vec<u8>> {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::bert::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::{AddedToken, Tokenizer};
    let bad = |e: String| ReftError::config("tokenizer", e);
    let map: tokenizers::models::bpe::Vocab = vocab.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let wp = WordPiece::builder().vocab(map).unk_token("[UNK]".into()).build().map_err(|e| bad(e.to_string()))?;
    let mut tok = Tokenizer::new(wp);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    let post = TemplateProcessing::builder()
        .try_single("[CLS] $A [SEP]")
        .and_then(|b| b.try_pair("[CLS] $A [SEP] $B:1 [SEP]:1"))
        .map_err(|e| bad(e.to_string()))?
        .special_tokens(vec![("[CLS]", 2), ("[SEP]", 3)])
        .build()
        .map_err(|e| bad(e.to_string()))?;
    tok.with_post_processor(Some(post));
    tok.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    tok.add_special_tokens(&["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(|s| AddedToken::from(s, true)));
    tokenizer_json(&tok)
}
