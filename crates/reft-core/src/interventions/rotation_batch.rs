//! The rotations `Rc = B·H(A)` of many interventions as one batched computation per forward.
//!
//! Each rotation is about 30 small kernels forward and more backward (the composite of
//! `rotation.rs`, on the GPU); a LoReFT on every layer of a 1.1B model ran them 22 times per
//! step, a third of the step's 6,513 kernels, at a few thousand floats each (an H200 census,
//! 2026-11-27). Stacked along a leading dimension, the rotations of one shape (`d`, `r`) run as
//! one composite with batched matmuls: the same kernels once, plus a copy per rotation to
//! stack the parameters. The values are the composite's own (`tests/rotation_batch.rs` compares
//! gradients with the per-intervention path).
//!
//! Only where the composite is the map (not the CPU's host op, not a dense base, not a probe).
//! On by default; `set_rotation_batch(false)` or `REFT_ROTATION_BATCH=0` turns it off.

use super::rotation::{apply_wy_base, host_map, Rotation};
use crate::ops::Switch;
use candle_core::{DType, Result, Tensor};

static BATCH: Switch = Switch::new("REFT_ROTATION_BATCH", true);

/// Turns the batched rotations on or off for the whole process (over `REFT_ROTATION_BATCH`).
pub fn set_rotation_batch(on: bool) {
    BATCH.set(on);
}

/// Whether `rot` can join a batch: the composite is its map on its device.
fn batchable(rot: &Rotation) -> bool {
    rot.dense_base.is_none() && rot.probe.is_none() && !host_map(rot.a.device())
}

/// `Rc` of each of `rots` (indexed as given; `None` where it is not batched) computed in
/// `dtype`, with a graph through the parameters when `track`. Rotations are grouped by shape,
/// and groups of one are left to the intervention.
pub(crate) fn batched_matrices(rots: &[Option<&Rotation>], track: bool, dtype: DType) -> Result<Vec<Option<Tensor>>> {
    let mut out = vec![None; rots.len()];
    if !BATCH.on() {
        return Ok(out);
    }
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, rot) in rots.iter().enumerate() {
        let Some(rot) = rot.filter(|r| batchable(r)) else { continue };
        let shape = rot.a.dims2()?;
        match groups.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, members)) => members.push(i),
            None => groups.push((shape, vec![i])),
        }
    }
    for (_, members) in groups.into_iter().filter(|(_, m)| m.len() > 1) {
        let group: Vec<&Rotation> = members.iter().map(|&i| rots[i].expect("grouped above")).collect();
        let param = |r: &&Rotation| if track { r.a.as_tensor().clone() } else { r.a.as_tensor().detach() };
        let a = Tensor::stack(&group.iter().map(param).collect::<Vec<_>>(), 0)?.to_dtype(dtype)?;
        let m = group[0].reflections(&a)?;
        let stack = |f: fn(&Rotation) -> &Tensor| -> Result<Tensor> {
            Tensor::stack(&group.iter().map(|r| f(r)).collect::<Vec<_>>(), 0)?.to_dtype(dtype)
        };
        let rc = apply_wy_base(&m, &stack(|r| &r.base_signs)?, &stack(|r| &r.base_u)?, &stack(|r| &r.base_t)?)?;
        for (k, &i) in members.iter().enumerate() {
            out[i] = Some(rc.get(k)?);
        }
    }
    Ok(out)
}
