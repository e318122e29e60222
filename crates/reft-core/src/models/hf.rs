//! Loading a decoder from an HF model directory — or the same files in memory (a [`FileMap`]):
//! `config.json`, `model.safetensors` or a sharded `model.safetensors.index.json`, and
//! `tokenizer.json`. Weight names follow transformers' `LlamaForCausalLM` state dict
//! (`model.layers.N.self_attn.q_proj.weight`, ...).

use super::config::DecoderConfig;
use super::llama::{Decoder, LayerWeights};
use crate::error::{ReftError, Result};
use crate::files::FileMap;
use crate::ops::FrozenLinear;
use candle_core::safetensors::{MmapedSafetensors, SliceSafetensors};
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

/// File names of the shards listed by a `model.safetensors.index.json`, sorted, deduplicated.
fn shard_names(index_json: &str, origin: &Path) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(index_json)
        .map_err(|e| ReftError::format(origin, format!("invalid JSON: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ReftError::format(origin, "no `weight_map` object"))?;
    let mut files: Vec<String> = map.values().filter_map(|f| f.as_str()).map(String::from).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

const NO_WEIGHTS: &str = "no model.safetensors or model.safetensors.index.json (PyTorch .bin weights are not supported)";

/// Lists the safetensors files of a directory (single file or sharded index).
pub(crate) fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| ReftError::io(&index, e))?;
        return Ok(shard_names(&text, &index)?.into_iter().map(|f| dir.join(f)).collect());
    }
    Err(ReftError::format(dir, NO_WEIGHTS))
}

/// Where the tensors live: memory-mapped files, or safetensors buffers already in memory.
enum Store<'a> {
    Mapped(MmapedSafetensors),
    Slices(Vec<SliceSafetensors<'a>>),
}

pub(crate) struct Weights<'a> {
    store: Store<'a>,
    /// The directory (or `<memory>`) named in errors.
    pub(crate) dir: PathBuf,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
}

impl Weights<'static> {
    /// Memory-maps the safetensors of an HF directory.
    pub(crate) fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let files = weight_files(dir)?;
        for f in &files {
            if !f.exists() {
                return Err(ReftError::io(f, std::io::Error::from(std::io::ErrorKind::NotFound)));
            }
        }
        // SAFETY: the files are memory-mapped read-only; we never write to them while mapped.
        let st = unsafe { MmapedSafetensors::multi(&files) }
            .map_err(|e| ReftError::format(dir, format!("cannot map safetensors: {e}")))?;
        Ok(Weights { store: Store::Mapped(st), dir: dir.to_path_buf(), dtype, device: device.clone() })
    }
}

impl<'a> Weights<'a> {
    /// The safetensors of in-memory HF files (`model.safetensors` or the index's shards).
    pub(crate) fn from_files(files: &'a FileMap, dtype: DType, device: &Device) -> Result<Self> {
        let names = if files.contains("model.safetensors") {
            vec!["model.safetensors".to_string()]
        } else if let Some(index) = files.get("model.safetensors.index.json") {
            let origin = FileMap::path("model.safetensors.index.json");
            shard_names(&String::from_utf8_lossy(index), &origin)?
        } else {
            return Err(ReftError::format(FileMap::path(""), NO_WEIGHTS));
        };
        let mut slices = Vec::with_capacity(names.len());
        for name in &names {
            let st = SliceSafetensors::new(files.require(name)?)
                .map_err(|e| ReftError::format(FileMap::path(name), format!("not a safetensors file: {e}")))?;
            slices.push(st);
        }
        Ok(Weights { store: Store::Slices(slices), dir: FileMap::path(""), dtype, device: device.clone() })
    }

    pub(crate) fn get(&self, name: &str) -> Result<Tensor> {
        let t = match &self.store {
            Store::Mapped(st) => st.load(name, &self.device),
            Store::Slices(v) => match v.iter().find(|s| s.get(name).is_ok()) {
                Some(s) => s.load(name, &self.device),
                None => Err(candle_core::Error::Msg(format!("no tensor named `{name}`"))),
            },
        }
        .map_err(|e| ReftError::format(&self.dir, format!("cannot read tensor `{name}`: {e}")))?;
        Ok(t.to_dtype(self.dtype)?)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        match &self.store {
            Store::Mapped(st) => st.get(name).is_ok(),
            Store::Slices(v) => v.iter().any(|s| s.get(name).is_ok()),
        }
    }

    pub(crate) fn linear(&self, prefix: &str, bias: bool) -> Result<FrozenLinear> {
        let w = self.get(&format!("{prefix}.weight"))?;
        let b = if bias { Some(self.get(&format!("{prefix}.bias"))?) } else { None };
        Ok(FrozenLinear::new(w, b))
    }
}

/// Loads the decoder of an HF directory.
pub fn load_decoder(dir: &Path, dtype: DType, device: &Device) -> Result<Decoder> {
    let cfg = DecoderConfig::from_hf_json(&dir.join("config.json"))?;
    build_decoder(cfg, &Weights::open(dir, dtype, device)?)
}

/// Loads the decoder of in-memory HF files (`config.json` and the safetensors).
pub fn load_decoder_from_files(files: &FileMap, dtype: DType, device: &Device) -> Result<Decoder> {
    let cfg = DecoderConfig::from_hf_bytes(files.require("config.json")?, &FileMap::path("config.json"))?;
    build_decoder(cfg, &Weights::from_files(files, dtype, device)?)
}

fn build_decoder(cfg: DecoderConfig, w: &Weights<'_>) -> Result<Decoder> {
    let (dir, dtype, device) = (&w.dir, w.dtype, &w.device);
    let embed = w.get("model.embed_tokens.weight")?;
    check_shape(&embed, &[cfg.vocab_size, cfg.hidden_size], "model.embed_tokens.weight", dir)?;
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}");
        let bias = cfg.attention_bias;
        layers.push(LayerWeights {
            input_norm: w.get(&format!("{p}.input_layernorm.weight"))?,
            q: w.linear(&format!("{p}.self_attn.q_proj"), bias)?,
            k: w.linear(&format!("{p}.self_attn.k_proj"), bias)?,
            v: w.linear(&format!("{p}.self_attn.v_proj"), bias)?,
            o: w.linear(&format!("{p}.self_attn.o_proj"), false)?,
            post_norm: w.get(&format!("{p}.post_attention_layernorm.weight"))?,
            gate: w.linear(&format!("{p}.mlp.gate_proj"), false)?,
            up: w.linear(&format!("{p}.mlp.up_proj"), false)?,
            down: w.linear(&format!("{p}.mlp.down_proj"), false)?,
            packed: None,
        });
    }
    let norm = w.get("model.norm.weight")?;
    let lm_head = if cfg.tie_word_embeddings || !w.has("lm_head.weight") {
        embed.clone()
    } else {
        w.get("lm_head.weight")?
    };
    let inv_freq = cfg.inv_freq();
    Ok(Decoder { cfg, embed, layers, norm, lm_head, inv_freq, device: device.clone(), dtype }.packed_if_on()?)
}

pub(crate) fn check_shape(t: &Tensor, want: &[usize], name: &str, file: &Path) -> Result<()> {
    if t.dims() != want {
        return Err(ReftError::format(
            file,
            format!("tensor `{name}` has shape {:?}, config implies {:?}", t.dims(), want),
        ));
    }
    Ok(())
}
