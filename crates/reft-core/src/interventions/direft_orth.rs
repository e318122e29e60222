//! The orthogonal DiReFT variant (pyreft's class literally named `DireftIntervention`; the
//! paper's Table 17 ablation `h + Rᵀ(Wh + b)`):
//!
//! ```text
//! Φ(h) = Drop( h + Rᵀ φ(Wh + b) )
//! ```
//!
//! `R` `[r, d]` orthonormal rows (see [`super::rotation`]), `W` `[r, d]`, `b` `[r]`. We name it
//! `direft_orth` so that `direft` means what the paper means.

use super::common::{activate, rotation_for, dropout, Affine, Ctx};
use super::rotation::Rotation;
use super::low_rank::{node_delta, OutMap};
use super::{InterventionSpec, Intervention};
use candle_core::{Result, Tensor, Var};

pub struct DireftOrth {
    pub spec: InterventionSpec,
    pub rotation: Rotation,
    pub source: Affine,
}

impl Intervention for DireftOrth {
    fn spec(&self) -> &InterventionSpec {
        &self.spec
    }

    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let rc = rotation_for(&self.rotation, ctx, h.dtype())?;
        let source = activate(&self.source.forward(h, ctx)?, self.spec.activation)?;
        let out = (h + source.matmul(&rc.t()?)?)?;
        dropout(&out, self.spec.dropout, ctx)
    }

    fn delta(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Option<Tensor>> {
        node_delta(&self.spec, h, &self.source, OutMap::Rotation { rotation: &self.rotation, subtract: false }, ctx)
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
