//! ConsReFT (pyreft `ConsreftIntervention`; the paper's `h + Rᵀ(b − Rh)` ablation, used for its
//! memorisation experiments):
//!
//! ```text
//! Φ(h) = h + Rᵀ(b − Rh)
//! ```
//!
//! `b` `[r]` is a free vector (input-independent), initialised `U[0, 1)`. No dropout, as in
//! pyreft. `d·r + r` parameters.

use super::common::{rotation_for, param, uniform_vector, Ctx};
use super::rotation::Rotation;
use super::{InterventionSpec, Intervention};
use candle_core::{Result, Tensor, Var};

pub struct Consreft {
    pub spec: InterventionSpec,
    pub rotation: Rotation,
    pub b: Var,
}

impl Consreft {
    pub fn new_b(r: usize, rng: &mut rand::rngs::StdRng, device: &candle_core::Device) -> Result<Var> {
        uniform_vector(r, rng, device)
    }
}

impl Intervention for Consreft {
    fn spec(&self) -> &InterventionSpec {
        &self.spec
    }

    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let rc = rotation_for(&self.rotation, ctx, h.dtype())?;
        let b = param(&self.b, ctx).to_dtype(h.dtype())?.unsqueeze(0)?;
        let projected = h.matmul(&rc)?;
        h + projected.broadcast_sub(&b)?.neg()?.matmul(&rc.t()?)?
    }

    fn params(&self) -> Vec<(String, Var)> {
        vec![("rotation.a".to_string(), self.rotation.a.clone()), ("learned_source".to_string(), self.b.clone())]
    }

    fn rotation(&self) -> Option<&Rotation> {
        Some(&self.rotation)
    }

    fn rotation_mut(&mut self) -> Option<&mut Rotation> {
        Some(&mut self.rotation)
    }
}
