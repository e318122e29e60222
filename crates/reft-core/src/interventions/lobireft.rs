//! LobiReFT (pyreft `LobireftIntervention`; the paper's "low-rank BitFit" ablation `h + Rᵀb`):
//!
//! ```text
//! Φ(h) = Drop( h + Rᵀb )
//! ```
//!
//! `b` `[r]` initialised `U[0, 1)`; `R` orthonormal rows. `d·r + r` parameters.

use super::common::{rotation_for, dropout, param, Ctx};
use super::rotation::Rotation;
use super::{InterventionSpec, Intervention};
use candle_core::{Result, Tensor, Var};

pub struct Lobireft {
    pub spec: InterventionSpec,
    pub rotation: Rotation,
    pub b: Var,
}

impl Intervention for Lobireft {
    fn spec(&self) -> &InterventionSpec {
        &self.spec
    }

    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let rc = rotation_for(&self.rotation, ctx, h.dtype())?;
        let b = param(&self.b, ctx).to_dtype(h.dtype())?.unsqueeze(0)?;
        let out = h.broadcast_add(&b.matmul(&rc.t()?)?)?;
        dropout(&out, self.spec.dropout, ctx)
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
