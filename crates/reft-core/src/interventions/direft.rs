//! DiReFT as the paper defines it (eq. 3; pyreft `NodireftIntervention`):
//!
//! ```text
//! Φ(h) = Drop( h + W₂ᵀ φ(W₁h + b) )
//! ```
//!
//! No orthogonality and no difference term. `W₁` `[r, d]`, `b` `[r]` (`learned_source`);
//! `W₂` `[r, d]` (`proj_layer.weight`). pyreft's `proj_layer` may carry a bias (`add_bias`) that
//! its forward never uses; we keep it only so imported checkpoints and parameter counts match.

use super::common::{activate, dropout, param, Affine, Ctx};
use super::low_rank::{node_delta, OutMap};
use super::{InterventionSpec, Intervention};
use candle_core::{Result, Tensor, Var};

pub struct Direft {
    pub spec: InterventionSpec,
    pub source: Affine,
    /// `proj_layer` (`W₂` and its unused bias).
    pub proj: Affine,
}

impl Intervention for Direft {
    fn spec(&self) -> &InterventionSpec {
        &self.spec
    }

    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let source = activate(&self.source.forward(h, ctx)?, self.spec.activation)?;
        let w2 = param(&self.proj.weight, ctx).to_dtype(h.dtype())?;
        let out = (h + source.matmul(&w2)?)?;
        dropout(&out, self.spec.dropout, ctx)
    }

    fn delta(&self, h: &Tensor, ctx: &mut Ctx) -> Result<Option<Tensor>> {
        node_delta(&self.spec, h, &self.source, OutMap::Rows(&self.proj.weight), ctx)
    }

    fn params(&self) -> Vec<(String, Var)> {
        let mut p = self.source.named("learned_source");
        p.push(("proj_layer.weight".to_string(), self.proj.weight.clone()));
        p
    }

    fn extra_state(&self) -> Vec<(String, Var)> {
        self.proj.bias.iter().map(|b| ("proj_layer.bias".to_string(), b.clone())).collect()
    }
}
