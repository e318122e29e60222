//! LoReFT (pyreft `LoreftIntervention`, paper eq. 2):
//!
//! ```text
//! Φ(h) = Drop( h + Rᵀ(φ(Wh + b) − Rh) )
//! ```
//!
//! `h` rows `[n, d]`; `R` `[r, d]` with orthonormal rows (stored as `Rc = Rᵀ`, see
//! [`super::rotation`]); `W` `[r, d]`, `b` `[r]` (`learned_source`); `φ` the activation
//! (identity by default). Dropout acts on the whole output, as in pyreft. `2dr + r` parameters.

use super::common::{activate, rotation_for, dropout, Affine, Ctx};
use super::rotation::Rotation;
use super::low_rank::{node_delta, OutMap};
use super::{InterventionSpec, Intervention};
use candle_core::{Result, Tensor, Var};

pub struct Loreft {
    pub spec: InterventionSpec,
    pub rotation: Rotation,
    pub source: Affine,
}

impl Intervention for Loreft {
    fn spec(&self) -> &InterventionSpec {
        &self.spec
    }

    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let rc = rotation_for(&self.rotation, ctx, h.dtype())?;
        let projected = h.matmul(&rc)?;
        let source = activate(&self.source.forward(h, ctx)?, self.spec.activation)?;
        let out = (h + (source - projected)?.matmul(&rc.t()?)?)?;
        dropout(&out, self.spec.dropout, ctx)
    }

    fn delta(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Option<Tensor>> {
        node_delta(&self.spec, h, &self.source, OutMap::Rotation { rotation: &self.rotation, subtract: true }, ctx)
    }

    fn params(&self) -> Vec<(String, Var)> {
        let mut p = vec![("rotation.a".to_string(), self.rotation.a.clone())];
        p.extend(self.source.named("learned_source"));
        p
    }

    fn rotation(&self) -> Option<&Rotation> {
        Some(&self.rotation)
    }

    fn rotation_mut(&mut self) -> Option<&mut Rotation> {
        Some(&mut self.rotation)
    }
}
