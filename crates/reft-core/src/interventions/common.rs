//! Pieces shared by the intervention types: a trainable affine map (`nn.Linear(d, r)` in
//! pyreft), activations, dropout, and the per-call context.

use super::Activation;
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::Rng;

/// What a forward call needs beyond the hidden rows.
pub struct Ctx<'a> {
    /// Record a graph through the parameters (training); false detaches them (inference).
    pub track: bool,
    /// Dropout randomness; `None` means eval mode (dropout off).
    pub rng: Option<&'a mut StdRng>,
    /// The intervention's rotation matrix when it was computed with others' in one batch
    /// (`rotation_batch.rs`); `None` computes it here.
    pub rotation: Option<Tensor>,
}

/// Reads a parameter for this call: the Var itself when training, a detached view otherwise.
pub fn param(v: &Var, ctx: &Ctx) -> Tensor {
    if ctx.track {
        v.as_tensor().clone()
    } else {
        v.as_tensor().detach()
    }
}

/// `y = x·Wᵀ + b` with trainable `W` (`[r, d]`) and optional `b` (`[r]`), PyTorch's default
/// `nn.Linear` init: both uniform in `±1/√d`.
pub struct Affine {
    pub weight: Var,
    pub bias: Option<Var>,
}

impl Affine {
    pub fn new(d: usize, r: usize, bias: bool, rng: &mut StdRng, device: &Device) -> Result<Self> {
        let bound = 1.0 / (d as f64).sqrt();
        let mut u = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect() };
        let weight = Var::from_tensor(&Tensor::from_vec(u(r * d), (r, d), device)?)?;
        let bias = if bias { Some(Var::from_tensor(&Tensor::from_vec(u(r), r, device)?)?) } else { None };
        Ok(Self { weight, bias })
    }

    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let w = param(&self.weight, ctx).to_dtype(x.dtype())?;
        let y = x.matmul(&w.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&param(b, ctx).to_dtype(x.dtype())?),
            None => Ok(y),
        }
    }

    /// Named parameters under `prefix` (`prefix.weight`, `prefix.bias`).
    pub fn named(&self, prefix: &str) -> Vec<(String, Var)> {
        let mut v = vec![(format!("{prefix}.weight"), self.weight.clone())];
        if let Some(b) = &self.bias {
            v.push((format!("{prefix}.bias"), b.clone()));
        }
        v
    }
}

/// A vector parameter drawn from `U[0, 1)` (pyreft's ConsReFT / LobiReFT `b`).
pub fn uniform_vector(r: usize, rng: &mut StdRng, device: &Device) -> Result<Var> {
    let v: Vec<f32> = (0..r).map(|_| rng.gen::<f32>()).collect();
    Var::from_tensor(&Tensor::from_vec(v, r, device)?)
}

/// Applies the configured activation (pyreft's `act_fn`; `linear` is the identity).
pub fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Linear => Ok(x.clone()),
        Activation::Relu => x.relu(),
        Activation::Gelu => x.gelu_erf(),
        Activation::Silu => x.silu(),
        Activation::Tanh => x.tanh(),
    }
}

/// Inverted dropout on the whole edited vector, as pyreft applies it; identity in eval mode.
pub fn dropout(x: &Tensor, p: f64, ctx: &mut Ctx) -> Result<Tensor> {
    match dropout_mask(x, p, ctx)? {
        Some(mask) => x.mul(&mask),
        None => Ok(x.clone()),
    }
}

/// The scaled keep mask (`1/(1−p)` or 0 per element, `x`'s shape and dtype) that [`dropout`]
/// multiplies by, keyed by one draw from `ctx.rng`; `None` in eval mode or for `p ≤ 0` (no draws
/// then). Element `i` is kept when [`keep_bit`]`(key, i, threshold)`: a counter-based generator,
/// so a GPU makes the mask itself (`reft_dropout_mask_f32`, the same bits) instead of the host
/// drawing one number per element and uploading the mask (on the 7B anchor shape, 0.46 M draws
/// and 1.8 MiB per intervention and forward).
pub fn dropout_mask(x: &Tensor, p: f64, ctx: &mut Ctx) -> Result<Option<Tensor>> {
    let Some(rng) = ctx.rng.as_deref_mut() else { return Ok(None) };
    if p <= 0.0 {
        return Ok(None);
    }
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let (key, threshold, n) = (rng.gen::<u64>(), keep_threshold(keep), x.elem_count());
    #[cfg(feature = "cuda")]
    if crate::ops::cuda_fused::applies(x) {
        return Ok(Some(crate::ops::cuda_fused::dropout_mask(n, key, threshold, scale, x.device())?.reshape(x.shape())?.to_dtype(x.dtype())?));
    }
    let mask: Vec<f32> = (0..n as u64).map(|i| if keep_bit(key, i, threshold) { scale } else { 0.0 }).collect();
    Ok(Some(Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?))
}

/// The keep probability as a 24-bit threshold for [`keep_bit`].
pub fn keep_threshold(keep: f64) -> u32 {
    (keep.clamp(0.0, 1.0) * (1u64 << 24) as f64).round() as u32
}

/// Whether element `i` of the mask keyed `key` is kept: the top 24 bits of SplitMix64's output
/// for counter `i` fall below `threshold`. Integer arithmetic only, as the CUDA kernel computes it.
pub fn keep_bit(key: u64, i: u64, threshold: u32) -> bool {
    let mut z = key.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as u32) < threshold
}

/// The rotation matrix for hidden rows of `dtype`: the batch's (`ctx.rotation`) or computed in
/// f32 (f64 for f64 models, so gradient checks see no f32 rounding), then cast to the hidden
/// dtype.
pub fn rotation_for(rot: &super::rotation::Rotation, ctx: &Ctx, dtype: DType) -> Result<Tensor> {
    let compute = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let rc = match &ctx.rotation {
        Some(rc) => rc.clone(),
        None => rot.matrix_in(ctx.track, compute)?,
    };
    if rc.dtype() == dtype {
        Ok(rc)
    } else {
        rc.to_dtype(dtype)
    }
}
