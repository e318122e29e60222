//! Import of pyreft-saved adapter directories (`ReftModel.save`): `config.json` (pyvene's
//! `IntervenableConfig`) plus one `intkey_<key>.bin` PyTorch pickle per intervention. Both key
//! eras are read: pyvene ≥ 0.1.7 (`layer_0_comp_block_output_unit_pos_nunit_1#0`) and older
//! (`layer.0.comp.block_output.unit.pos.nunit.1#0`) — the file name is whatever `sorted_keys`
//! says. Tensors per class (REFERENCE.md §2.5):
//!
//! - LoReFT: `weight` `[r,d]`, `bias` `[r]`, `rotate_layer` `[d,r]` (the effective matrix).
//! - other orthogonal kinds: `rotate_layer.parametrizations.weight.original` `[d,r]` and
//!   `...base` `[d,d]`; the effective matrix is rebuilt with torch's Householder map.
//! - NoReFT / NodiReFT: `learned_source.{weight,bias}`, `proj_layer.weight` (+ `.bias`).
//! - ConsReFT / LobiReFT: `learned_source` `[r]`.
//!
//! Rotations restart their parametrization at the saved matrix (`A = 0`), as pyreft's own
//! `load_state_dict` does for LoReFT. A directory is read into memory first, so the same code
//! loads an adapter's files where there is no file system (WebAssembly, [`load_pyreft_files`]).

use crate::error::{ReftError, Result};
use crate::files::FileMap;
use crate::interventions::rotation::Rotation;
use crate::interventions::{Activation, InterventionSpec, Kind};
use crate::models::{Component, Model};
use crate::reft::ReftModel;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Is `dir` a pyreft-saved adapter?
pub fn is_pyreft_dir(dir: &Path) -> bool {
    std::fs::read(dir.join("config.json")).is_ok_and(|bytes| is_pyreft_config(&bytes))
}

/// Whether a `config.json` is pyvene's `IntervenableConfig` (it lists intervention types and
/// representations).
fn is_pyreft_config(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains("intervention_types") && text.contains("representations")
}

/// The kind of a pyreft intervention class name (`"LoreftIntervention"` → `Kind::Loreft`).
pub fn kind_from_class(class: &str) -> Option<Kind> {
    Some(match class {
        "LoreftIntervention" => Kind::Loreft,
        "NodireftIntervention" => Kind::Direft,
        "DireftIntervention" => Kind::DireftOrth,
        "NoreftIntervention" => Kind::Noreft,
        "ConsreftIntervention" => Kind::Consreft,
        "LobireftIntervention" => Kind::Lobireft,
        _ => return None,
    })
}

fn kind_from_type(t: &str, path: &Path) -> Result<Kind> {
    // "<class 'pyreft.interventions.LoreftIntervention'>" → "LoreftIntervention"
    let class = t.trim_end_matches("'>").rsplit(['.', '\'']).next().unwrap_or(t);
    kind_from_class(class).ok_or_else(|| {
        ReftError::UnsupportedModel(format!(
            "intervention class `{class}` in {} is not a pyreft ReFT intervention",
            path.display()
        ))
    })
}

/// torch's orthogonal parametrization (Householder, trivialized): `base · (H(tril₋₁(X)) ·
/// sign(diag X))` for a tall `d×r` `X`, computed in f64.
fn torch_orthogonal(original: &Tensor, base: &Tensor) -> Result<Tensor> {
    let (d, r) = original.dims2()?;
    let x: Vec<f64> = original.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let mut q = vec![0f64; d * r];
    for j in 0..r {
        let mut col = vec![0f64; d];
        col[j] = 1.0;
        for i in (0..r).rev() {
            let mut v = vec![0f64; d];
            v[i] = 1.0;
            for k in i + 1..d {
                v[k] = x[k * r + i];
            }
            let tau = 2.0 / v.iter().map(|a| a * a).sum::<f64>();
            let dot: f64 = v.iter().zip(&col).map(|(a, b)| a * b).sum();
            for k in 0..d {
                col[k] -= tau * v[k] * dot;
            }
        }
        let s = (x[j * r + j] as i64) as f64; // torch: X.diagonal().int()
        for k in 0..d {
            q[k * r + j] = col[k] * s;
        }
    }
    let q = Tensor::from_vec(q, (d, r), &Device::Cpu)?;
    Ok(base.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.matmul(&q)?.to_dtype(DType::F32)?)
}

/// Is `files` a pyreft-saved adapter (its `config.json` and `intkey_*.bin` files, in memory)?
pub fn is_pyreft_files(files: &FileMap) -> bool {
    files.get("config.json").is_some_and(is_pyreft_config)
}

/// Loads a pyreft-saved directory onto `base`: its `config.json` and the `intkey_<key>.bin` file
/// of each key it lists, read into memory for [`load_pyreft_files`]' code path.
pub fn load_pyreft(base: Arc<Model>, dir: &Path) -> Result<ReftModel> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| ReftError::io(dir.join(name), e));
    let mut files = FileMap::new();
    files.insert("config.json", read("config.json")?);
    let (cfg, _) = config(&files, dir)?;
    for key in cfg.get("sorted_keys").and_then(|v| v.as_array()).into_iter().flatten() {
        let name = format!("intkey_{}.bin", key.as_str().unwrap_or_default());
        files.insert(name.clone(), read(&name)?);
    }
    load_from(base, &files, dir)
}

/// Loads a pyreft adapter from its files in memory (`config.json` and `intkey_<key>.bin` per
/// intervention: where there is no file system, as in WebAssembly) onto `base`.
pub fn load_pyreft_files(base: Arc<Model>, files: &FileMap) -> Result<ReftModel> {
    load_from(base, files, Path::new("<memory>"))
}

/// `config.json` of `files`, parsed, and the path errors name it by (under `root`).
fn config(files: &FileMap, root: &Path) -> Result<(serde_json::Value, std::path::PathBuf)> {
    let cpath = root.join("config.json");
    let bytes = files.get("config.json").ok_or_else(|| ReftError::io(&cpath, std::io::ErrorKind::NotFound.into()))?;
    let cfg = serde_json::from_slice(bytes).map_err(|e| ReftError::format(&cpath, e.to_string()))?;
    Ok((cfg, cpath))
}

fn load_from(base: Arc<Model>, files: &FileMap, root: &Path) -> Result<ReftModel> {
    let (cfg, cpath) = config(files, root)?;
    let field = |k: &str| cfg.get(k).and_then(|v| v.as_array()).ok_or_else(|| ReftError::format(&cpath, format!("no `{k}` list")));
    let reps = field("representations")?;
    let types = field("intervention_types")?;
    let keys = field("sorted_keys")?;
    if reps.len() != types.len() || reps.len() != keys.len() {
        return Err(ReftError::format(&cpath, "representations, intervention_types and sorted_keys differ in length"));
    }
    let hidden = base.hidden_size();
    let device = base.device().clone();
    let (mut specs, mut states) = (Vec::new(), Vec::new());
    for ((rep, ty), key) in reps.iter().zip(types).zip(keys) {
        let kind = kind_from_type(ty.as_str().unwrap_or_default(), &cpath)?;
        // A representation is a list in namedtuple order or (older files) an object.
        let get = |i: usize, k: &str| rep.get(i).or_else(|| rep.get(k)).cloned().unwrap_or(serde_json::Value::Null);
        let layer = get(0, "layer").as_u64().ok_or_else(|| ReftError::format(&cpath, "representation without a layer"))? as usize;
        let comp_name = get(1, "component").as_str().unwrap_or("block_output").to_string();
        let component = Component::parse(&comp_name).ok_or_else(|| {
            ReftError::UnsupportedModel(format!("component `{comp_name}` in {} (supported: block_output, block_input, attention_output, mlp_output)", cpath.display()))
        })?;
        let key = key.as_str().unwrap_or_default();
        let name = format!("intkey_{key}.bin");
        let file = root.join(&name);
        let bytes = files.get(&name).ok_or_else(|| ReftError::io(&file, std::io::ErrorKind::NotFound.into()))?;
        let tensors: HashMap<String, Tensor> = crate::torch_pickle::read_state_dict(bytes, &file)?
            .into_iter()
            .map(|(k, v)| v.to_dtype(DType::F32).and_then(|v| v.to_device(&device)).map(|v| (k, v)))
            .collect::<candle_core::Result<_>>()?;
        let need = |k: &str| tensors.get(k).cloned().ok_or_else(|| ReftError::format(&file, format!("missing tensor `{k}`")));
        let rank = match get(4, "low_rank_dimension").as_u64() {
            Some(r) => r as usize,
            None => {
                let probe = ["weight", "learned_source.weight", "learned_source"].iter().find_map(|k| tensors.get(*k));
                probe.map(|t| t.dims()[0]).ok_or_else(|| ReftError::format(&file, "cannot infer the rank"))?
            }
        };
        let add_bias = tensors.contains_key("proj_layer.bias");
        specs.push(InterventionSpec { kind, layer, component, rank, dropout: 0.0, activation: Activation::Linear, add_bias });
        let mut state: HashMap<String, Tensor> = HashMap::new();
        match kind {
            Kind::Loreft => {
                state.insert("rotation".into(), need("rotate_layer")?);
                state.insert("learned_source.weight".into(), need("weight")?);
                state.insert("learned_source.bias".into(), need("bias")?);
            }
            Kind::DireftOrth | Kind::Consreft | Kind::Lobireft => {
                let r = torch_orthogonal(
                    &need("rotate_layer.parametrizations.weight.original")?,
                    &need("rotate_layer.parametrizations.weight.base")?,
                )?;
                state.insert("rotation".into(), r.to_device(&device)?);
                for k in ["learned_source", "learned_source.weight", "learned_source.bias"] {
                    if let Some(t) = tensors.get(k) {
                        state.insert(k.into(), t.clone());
                    }
                }
            }
            Kind::Direft | Kind::Noreft => {
                for k in ["learned_source.weight", "learned_source.bias", "proj_layer.weight", "proj_layer.bias"] {
                    if let Some(t) = tensors.get(k) {
                        state.insert(k.into(), t.clone());
                    }
                }
            }
        }
        states.push((file, state));
    }
    let mut model = ReftModel::new(base, &specs, 0)?;
    for (iv, (file, state)) in model.interventions.iter_mut().zip(states) {
        let rank = iv.spec().rank;
        if let Some(rot) = iv.rotation_mut() {
            let r = state.get("rotation").ok_or_else(|| ReftError::format(&file, "missing rotation"))?;
            if r.dims() != [hidden, rank] {
                return Err(ReftError::format(&file, format!("rotation has shape {:?}, model needs [{hidden}, {rank}]", r.dims())));
            }
            *rot = Rotation::from_initial(r)?;
        }
        for (n, v) in iv.params().into_iter().chain(iv.extra_state()) {
            if n == "rotation.a" {
                continue;
            }
            let t = state.get(&n).ok_or_else(|| ReftError::format(&file, format!("missing tensor for `{n}`")))?;
            if t.dims() != v.dims() {
                return Err(ReftError::format(&file, format!("`{n}` has shape {:?}, expected {:?}", t.dims(), v.dims())));
            }
            v.set(t)?;
        }
    }
    Ok(model)
}
