//! NoReFT (pyreft `NoreftIntervention`; the paper's `h + W₂ᵀ(W₁h + b − W₂h)` ablation):
//!
//! ```text
//! Φ(h) = Drop( h + W₂ᵀ(φ(W₁h + b) − proj(h)) ),   proj(h) = W₂h (+ b₂ with add_bias)
//! ```
//!
//! LoReFT without the orthogonality constraint. `W₁` `[r, d]`, `b` `[r]` (`learned_source`),
//! `W₂` `[r, d]` and optional `b₂` (`proj_layer`).

use super::common::{activate, dropout, param, Affine, Ctx};
use super::{InterventionSpec, Intervention};
use candle_core::{Result, Tensor, Var};

pub struct Noreft {
    pub spec: InterventionSpec,
    pub source: Affine,
    pub proj: Affine,
}

impl Intervention for Noreft {
    fn spec(&self) -> &InterventionSpec {
        &self.spec
    }

    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let projected = self.proj.forward(h, ctx)?;
        let source = activate(&self.source.forward(h, ctx)?, self.spec.activation)?;
        let w2 = param(&self.proj.weight, ctx).to_dtype(h.dtype())?;
        let out = (h + (source - projected)?.matmul(&w2)?)?;
        dropout(&out, self.spec.dropout, ctx)
    }

    fn params(&self) -> Vec<(String, Var)> {
        let mut p = self.source.named("learned_source");
        p.extend(self.proj.named("proj_layer"));
        p
    }
}
