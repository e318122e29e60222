//! One AdamW update of one parameter, as `torch.optim.AdamW` computes it (bias-corrected
//! moments, `eps` outside the square root, decoupled decay), in f32.
//!
//! Op by op the update is about 15 of candle's kernels per parameter, with three parameters per
//! LoReFT intervention: on the GPU, over a thousand launches per step for 22 interventions,
//! each a few microseconds of host time for a few thousand floats. On CUDA (f32 parameters,
//! fused kernels on) one kernel (`reft-kernels`' `reft_adamw_f32`) does it in place, rounding
//! each product and sum to f32 in the order the ops do, so the two agree to the bit
//! (`tests/cuda_kernels.rs` runs the kernel's emulation against [`adamw_update_ops`]).

use candle_core::{Result, Tensor, Var};

/// The f32 scalars of one update: each constant the op-by-op update multiplies or adds with,
/// computed in f64 and rounded to f32 as candle's `affine` rounds its constants. In the kernel's
/// argument order ([`Self::as_array`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamwScalars {
    /// The clipping coefficient the gradient is scaled by (1 without clipping).
    pub gscale: f32,
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `1 / (1 − β₁ᵗ)` and `1 / √(1 − β₂ᵗ)`.
    pub inv_bc1: f32,
    pub inv_sqrt_bc2: f32,
    pub eps: f32,
    pub lr: f32,
    /// `1 − lr·λ` for a decayed parameter, else 1.
    pub decay: f32,
}

impl AdamwScalars {
    /// For step `t` (from 1); `decay` is `lr·weight_decay` when the parameter is decayed.
    #[allow(clippy::too_many_arguments)]
    pub fn new(t: i32, lr: f64, beta1: f64, beta2: f64, eps: f64, decay: f64, gscale: f64) -> Self {
        let (bc1, bc2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        Self {
            gscale: gscale as f32,
            beta1: beta1 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            inv_bc1: (1.0 / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            eps: eps as f32,
            lr: lr as f32,
            decay: (1.0 - decay) as f32,
        }
    }

    pub fn as_array(&self) -> [f32; 10] {
        [self.gscale, self.beta1, self.one_minus_beta1, self.beta2, self.one_minus_beta2, self.inv_bc1, self.inv_sqrt_bc2, self.eps, self.lr, self.decay]
    }
}

/// Updates `p` in place from its gradient `g` and returns the new moments `(m, v)`: one fused
/// kernel on CUDA (f32, contiguous, fused kernels on), else [`adamw_update_ops`].
pub fn adamw_update(p: &Var, g: &Tensor, m: &Tensor, v: &Tensor, s: &AdamwScalars) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if crate::ops::fused_adamw_applies(p.as_tensor(), &[g, m, v]) {
        crate::ops::fused_adamw(p.as_tensor(), g, m, v, &s.as_array())?;
        return Ok((m.clone(), v.clone()));
    }
    adamw_update_ops(p, g, m, v, s)
}

/// The update op by op, with candle's kernels: the reference for the fused kernel.
pub fn adamw_update_ops(p: &Var, g: &Tensor, m: &Tensor, v: &Tensor, s: &AdamwScalars) -> Result<(Tensor, Tensor)> {
    let f = |x: f32| x as f64;
    let g = if s.gscale != 1.0 { g.affine(f(s.gscale), 0.0)? } else { g.clone() };
    let m = (m.affine(f(s.beta1), 0.0)? + g.affine(f(s.one_minus_beta1), 0.0)?)?;
    let v = (v.affine(f(s.beta2), 0.0)? + g.sqr()?.affine(f(s.one_minus_beta2), 0.0)?)?;
    // `x·a + b` rounds the product, then the sum, as two ops would on the CPU.
    let denom = v.sqrt()?.affine(f(s.inv_sqrt_bc2), f(s.eps))?;
    let update = (m.affine(f(s.inv_bc1), 0.0)? / denom)?;
    let value = p.as_tensor().detach();
    let value = if s.decay != 1.0 { value.affine(f(s.decay), 0.0)? } else { value };
    p.set(&(value - update.affine(f(s.lr), 0.0)?)?)?;
    Ok((m, v))
}
