//! Our checkpoint format: a directory with
//!
//! - `reft_config.json` — `{ "format_version": 1, "model": {architecture, hidden_size,
//!   num_layers}, "interventions": [InterventionSpec, ...] }`
//! - `interventions.safetensors` — f32 tensors keyed `interventions.{i}.{name}`, where `name`
//!   is the parameter's canonical name (`learned_source.weight`, `proj_layer.weight`,
//!   `rotation.a`, ...), plus for rotations `interventions.{i}.rotation.base` (the initial
//!   `Rc₀`, from which the fixed base is derived) and `interventions.{i}.rotate_layer` (the
//!   effective `Rc`, `d×r`, for interchange; ignored on load), and, for a rotation over a
//!   dense base (`Rotation::with_dense_base`), that `d×d` base as `rotation.base_dense`.
//! - optionally `optimizer.safetensors` (`adamw.m.{k}`, `adamw.v.{k}` in parameter order) with
//!   its step count in `reft_config.json` (`optimizer_step`), for exact resume.
//! - `metadata` in `reft_config.json`: caller-owned JSON (the TS layer's adapter config).
//! - for encoders with a classification head, `head` (its [`HeadSpec`]) in `reft_config.json`
//!   and its tensors `head.dense.weight`, `head.dense.bias`, `head.out.weight`, `head.out.bias`
//!   (all four, trainable or not, so the adapter is self-contained) in
//!   `interventions.safetensors`.
//!
//! [`ReftModel::to_files`] / [`ReftModel::from_files`] produce and read the same files in memory
//! (a [`FileMap`]) where there is no file system. Writes to disk are atomic: a new directory is written under a temporary name and renamed into place;
//! in an existing directory only our three files are replaced (each by rename, config last) and
//! anything else there is left alone.

use crate::error::{ReftError, Result};
use crate::files::FileMap;
use crate::interventions::rotation::Rotation;
use crate::head::HeadSpec;
use crate::interventions::{self, InterventionSpec};
use crate::models::Model;
use crate::reft::ReftModel;
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Version of the on-disk format written by this build.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelInfo {
    architecture: String,
    hidden_size: usize,
    num_layers: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointConfig {
    format_version: u32,
    model: ModelInfo,
    interventions: Vec<InterventionSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    optimizer_step: Option<u64>,
    /// Seed of the dropout masks (see `ReftModel::dropout_seed`).
    #[serde(default)]
    dropout_seed: u64,
    /// Opaque JSON owned by the caller (the TS layer keeps its adapter config here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
    /// The classification/regression head, if the adapter has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<HeadSpec>,
}

/// File names of a checkpoint.
pub const CONFIG_FILE: &str = "reft_config.json";
pub const TENSORS_FILE: &str = "interventions.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Is `dir` one of our checkpoints?
pub fn is_checkpoint(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).exists()
}

/// The safetensors bytes of `tensors` (what `candle_core::safetensors::save` writes).
fn serialize(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    Ok(safetensors::tensor::serialize(tensors, None).map_err(candle_core::Error::from)?)
}

impl ReftModel {
    /// All tensors to save, keyed as documented above.
    fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut map = HashMap::new();
        for (i, iv) in self.interventions.iter().enumerate() {
            for (n, v) in iv.params().into_iter().chain(iv.extra_state()) {
                map.insert(format!("interventions.{i}.{n}"), v.as_tensor().to_dtype(DType::F32)?);
            }
            if let Some(rot) = iv.rotation() {
                map.insert(format!("interventions.{i}.rotation.base"), rot.base.clone());
                if let Some(b) = &rot.dense_base {
                    map.insert(format!("interventions.{i}.rotation.base_dense"), b.clone());
                }
                map.insert(format!("interventions.{i}.rotate_layer"), rot.matrix(false)?);
            }
        }
        if let Some(head) = &self.head {
            for (n, v) in head.state() {
                map.insert(format!("head.{n}"), v.as_tensor().to_dtype(DType::F32)?);
            }
        }
        Ok(map)
    }

    /// The checkpoint as in-memory files: `reft_config.json`, `interventions.safetensors` and,
    /// with `with_optimizer` after at least one step, `optimizer.safetensors` — byte for byte
    /// what [`ReftModel::save`] writes.
    pub fn to_files(&self, with_optimizer: bool) -> Result<FileMap> {
        let has_opt = with_optimizer && self.optimizer.step > 0;
        let config = CheckpointConfig {
            format_version: FORMAT_VERSION,
            model: ModelInfo {
                architecture: self.base.architecture().to_string(),
                hidden_size: self.base.hidden_size(),
                num_layers: self.base.num_layers(),
            },
            interventions: self.interventions.iter().map(|iv| iv.spec().clone()).collect(),
            optimizer_step: if has_opt { Some(self.optimizer.step) } else { None },
            dropout_seed: self.dropout_seed,
            metadata: self.metadata.clone(),
            head: self.head.as_ref().map(|h| h.spec.clone()),
        };
        let mut files = FileMap::new();
        let json = serde_json::to_string_pretty(&config).map_err(|e| ReftError::config("checkpoint", e.to_string()))?;
        files.insert(CONFIG_FILE, json.into_bytes());
        files.insert(TENSORS_FILE, serialize(&self.state_tensors()?)?);
        if has_opt {
            let mut map = HashMap::new();
            for (k, (m, v)) in self.optimizer.m.iter().zip(&self.optimizer.v).enumerate() {
                map.insert(format!("adamw.m.{k}"), m.clone());
                map.insert(format!("adamw.v.{k}"), v.clone());
            }
            files.insert(OPTIMIZER_FILE, serialize(&map)?);
        }
        Ok(files)
    }

    /// Saves the interventions (and with `with_optimizer` the AdamW state) to `dir` atomically.
    pub fn save(&self, dir: &Path, with_optimizer: bool) -> Result<()> {
        let files = self.to_files(with_optimizer)?;
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| ReftError::io(parent, e))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "checkpoint".into());
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        files.write_to_dir(&tmp)?;
        if !dir.exists() {
            // A new directory appears whole or not at all.
            std::fs::rename(&tmp, dir).map_err(|e| ReftError::io(dir, e))?;
            return Ok(());
        }
        // An existing directory keeps whatever else it holds (e.g. `checkpoint-*` folders): our
        // files are renamed in one by one, the config last, so a crash leaves the old config
        // pointing at complete tensors or the new one at complete tensors.
        for f in [TENSORS_FILE, OPTIMIZER_FILE, CONFIG_FILE] {
            let (src, dst) = (tmp.join(f), dir.join(f));
            if src.exists() {
                std::fs::rename(&src, &dst).map_err(|e| ReftError::io(&dst, e))?;
            } else if f == OPTIMIZER_FILE && dst.exists() {
                std::fs::remove_file(&dst).map_err(|e| ReftError::io(&dst, e))?;
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(())
    }

    /// Loads one of our checkpoints onto `base`.
    pub fn load(base: Arc<Model>, dir: &Path, with_optimizer: bool) -> Result<Self> {
        let names: &[&str] = if with_optimizer { &[CONFIG_FILE, TENSORS_FILE, OPTIMIZER_FILE] } else { &[CONFIG_FILE, TENSORS_FILE] };
        Self::load_files(base, &FileMap::read_dir_files(dir, names)?, with_optimizer, dir)
    }

    /// Loads a checkpoint held in memory (the files of [`ReftModel::to_files`]) onto `base`.
    pub fn from_files(base: Arc<Model>, files: &FileMap, with_optimizer: bool) -> Result<Self> {
        Self::load_files(base, files, with_optimizer, Path::new("<memory>"))
    }

    /// [`ReftModel::from_files`], naming `dir` in errors.
    fn load_files(base: Arc<Model>, files: &FileMap, with_optimizer: bool, dir: &Path) -> Result<Self> {
        let need = |name: &str| {
            files.get(name).ok_or_else(|| ReftError::io(dir.join(name), std::io::ErrorKind::NotFound.into()))
        };
        let cpath = dir.join(CONFIG_FILE);
        let config: CheckpointConfig =
            serde_json::from_slice(need(CONFIG_FILE)?).map_err(|e| ReftError::format(&cpath, e.to_string()))?;
        if config.format_version != FORMAT_VERSION {
            return Err(ReftError::format(&cpath, format!("format_version {} (this build reads {FORMAT_VERSION})", config.format_version)));
        }
        let (hidden, layers) = (base.hidden_size(), base.num_layers());
        if config.model.hidden_size != hidden || config.model.num_layers != layers {
            return Err(ReftError::shape(
                "checkpoint model",
                format!("hidden {hidden} × {layers} layers (loaded model)"),
                format!("hidden {} × {} layers (checkpoint)", config.model.hidden_size, config.model.num_layers),
            ));
        }
        let st = dir.join(TENSORS_FILE);
        let tensors = candle_core::safetensors::load_buffer(need(TENSORS_FILE)?, base.device())
            .map_err(|e| ReftError::format(&st, format!("unreadable safetensors: {e}")))?;
        let mut model = ReftModel::with_head(base, &config.interventions, config.head.clone(), 0)?;
        model.restore(&tensors, &st)?;
        model.metadata = config.metadata;
        model.dropout_seed = config.dropout_seed;
        if with_optimizer {
            if let Some(step) = config.optimizer_step {
                let op = dir.join(OPTIMIZER_FILE);
                let t = candle_core::safetensors::load_buffer(need(OPTIMIZER_FILE)?, model.base.device())
                    .map_err(|e| ReftError::format(&op, format!("unreadable optimizer state: {e}")))?;
                let n = model.named_params().len();
                let get = |k: &str| t.get(k).cloned().ok_or_else(|| ReftError::format(&op, format!("missing `{k}`")));
                model.optimizer.m = (0..n).map(|k| get(&format!("adamw.m.{k}"))).collect::<Result<_>>()?;
                model.optimizer.v = (0..n).map(|k| get(&format!("adamw.v.{k}"))).collect::<Result<_>>()?;
                model.optimizer.step = step;
            }
        }
        Ok(model)
    }

    /// Overwrites every intervention tensor from `tensors` (keys as documented above).
    pub(crate) fn restore(&mut self, tensors: &HashMap<String, Tensor>, file: &Path) -> Result<()> {
        let hidden = self.base.hidden_size();
        if let Some(head) = &self.head {
            for (n, v) in head.state() {
                let key = format!("head.{n}");
                let t = tensors.get(&key).ok_or_else(|| ReftError::format(file, format!("missing tensor `{key}`")))?;
                if t.dims() != v.dims() {
                    return Err(ReftError::format(file, format!("`{key}` has shape {:?}, expected {:?}", t.dims(), v.dims())));
                }
                v.set(&t.to_dtype(v.dtype())?)?;
            }
        }
        for i in 0..self.interventions.len() {
            let get = |n: &str| {
                tensors.get(&format!("interventions.{i}.{n}")).cloned().ok_or_else(|| {
                    ReftError::format(file, format!("missing tensor `interventions.{i}.{n}`"))
                })
            };
            let spec = self.interventions[i].spec().clone();
            let mut rng = rand::SeedableRng::seed_from_u64(0);
            let mut iv = interventions::build(&spec, hidden, &mut rng, self.base.device())?;
            if let Some(rot) = iv.rotation_mut() {
                *rot = match tensors.get(&format!("interventions.{i}.rotation.base_dense")) {
                    Some(b) => {
                        if b.dims() != [hidden, hidden] {
                            return Err(ReftError::format(file, format!("`interventions.{i}.rotation.base_dense` has shape {:?}, expected [{hidden}, {hidden}]", b.dims())));
                        }
                        let r = Rotation::with_dense_base(b, spec.rank)?;
                        r.a.set(&get("rotation.a")?.to_dtype(DType::F32)?)?;
                        r
                    }
                    None => Rotation::from_state(&get("rotation.base")?, &get("rotation.a")?)?,
                };
            }
            for (n, v) in iv.params().into_iter().chain(iv.extra_state()) {
                if n == "rotation.a" {
                    continue;
                }
                let t = get(&n)?;
                if t.dims() != v.dims() {
                    return Err(ReftError::format(file, format!("`interventions.{i}.{n}` has shape {:?}, spec implies {:?}", t.dims(), v.dims())));
                }
                v.set(&t.to_dtype(v.dtype())?)?;
            }
            self.interventions[i] = iv;
        }
        Ok(())
    }
}
