//! Intervention types. Each file implements one method of the paper / pyreft; this module holds
//! the closed set of kinds, the typed spec, the common trait and construction.
//!
//! Adding a method means: one new file, one [`Kind`] arm, one arm in [`build`], and one row in
//! the conformance tests.

mod common;
pub mod consreft;
pub mod direft;
pub mod direft_orth;
mod householder;
pub mod lobireft;
pub mod loreft;
mod low_rank;
pub mod noreft;
pub mod rotation;
mod rotation_batch;

pub use common::{keep_bit, keep_threshold, Ctx};
pub(crate) use rotation_batch::batched_matrices;
pub use low_rank::{intervention_nodes_on, set_intervention_nodes};
pub use rotation_batch::set_rotation_batch;

use crate::error::{ReftError, Result};
use crate::models::Component;
use candle_core::{Device, Tensor, Var};
use common::Affine;
use rand::rngs::StdRng;
use rotation::Rotation;
use serde::{Deserialize, Serialize};

/// The intervention methods. Serialised lowercase (`"loreft"`, `"direft_orth"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `h + Rᵀ(φ(Wh+b) − Rh)`, R orthonormal (pyreft `LoreftIntervention`).
    Loreft,
    /// `h + W₂ᵀφ(W₁h+b)`, no orthogonality: DiReFT as the paper defines it (pyreft `NodireftIntervention`).
    Direft,
    /// `h + Rᵀφ(Wh+b)`, R orthonormal (pyreft's class named `DireftIntervention`).
    DireftOrth,
    /// `h + W₂ᵀ(φ(W₁h+b) − W₂h)` (pyreft `NoreftIntervention`).
    Noreft,
    /// `h + Rᵀ(b − Rh)` (pyreft `ConsreftIntervention`).
    Consreft,
    /// `h + Rᵀb` (pyreft `LobireftIntervention`).
    Lobireft,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            ReftError::config(
                "kind",
                format!("unknown intervention kind `{s}` (loreft, direft, direft_orth, noreft, consreft, lobireft)"),
            )
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Loreft => "loreft",
            Kind::Direft => "direft",
            Kind::DireftOrth => "direft_orth",
            Kind::Noreft => "noreft",
            Kind::Consreft => "consreft",
            Kind::Lobireft => "lobireft",
        }
    }
}

/// Activation applied to `Wh + b` (pyreft's `act_fn`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    /// Exact (erf) GELU, as transformers' `"gelu"`.
    Gelu,
    Silu,
    Tanh,
}

impl Activation {
    pub fn parse(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            ReftError::config("activation", format!("unknown activation `{s}` (linear, relu, gelu, silu, tanh)"))
        })
    }
}

/// One intervention at one (layer, component) site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionSpec {
    pub kind: Kind,
    pub layer: usize,
    #[serde(default = "default_component")]
    pub component: Component,
    /// Low-rank dimension `r` (pyreft's `low_rank_dimension`).
    pub rank: usize,
    /// Dropout on the edited vector in training mode. Default 0.
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub activation: Activation,
    /// NoReFT/DiReFT: bias on `proj_layer` (pyreft `add_bias`). Default false.
    #[serde(default)]
    pub add_bias: bool,
}

fn default_component() -> Component {
    Component::BlockOutput
}

impl InterventionSpec {
    /// A spec from the loose fields the bindings receive (names as strings, optional fields
    /// defaulted as documented on the struct), with unknown names reported as `InvalidConfig`.
    pub fn from_fields(
        kind: &str,
        layer: usize,
        component: Option<&str>,
        rank: usize,
        dropout: Option<f64>,
        activation: Option<&str>,
        add_bias: Option<bool>,
    ) -> Result<Self> {
        let component = match component {
            None => default_component(),
            Some(c) => Component::parse(c).ok_or_else(|| ReftError::config("component", format!("unknown component `{c}`")))?,
        };
        Ok(InterventionSpec {
            kind: Kind::parse(kind)?,
            layer,
            component,
            rank,
            dropout: dropout.unwrap_or(0.0),
            activation: activation.map(Activation::parse).transpose()?.unwrap_or_default(),
            add_bias: add_bias.unwrap_or(false),
        })
    }

    /// The activation's serialised name (`"linear"`, `"relu"`, ...).
    pub fn activation_name(&self) -> String {
        serde_json::to_value(self.activation).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| "linear".into())
    }

    /// Checks the spec against a model with `num_layers` layers of width `hidden`.
    pub fn validate(&self, num_layers: usize, hidden: usize) -> Result<()> {
        if self.layer >= num_layers {
            return Err(ReftError::range("layer", self.layer as i64, format!("0..{}", num_layers)));
        }
        if self.rank == 0 || self.rank > hidden {
            return Err(ReftError::range("rank", self.rank as i64, format!("1..={hidden}")));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ReftError::config("dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        Ok(())
    }
}

/// The behaviour every intervention type shares. `h` is `[n, d]` (selected rows).
pub trait Intervention: Send + Sync {
    fn spec(&self) -> &InterventionSpec;
    /// Φ applied to each row of `h`.
    fn forward(&self, h: &Tensor, ctx: &mut Ctx) -> candle_core::Result<Tensor>;
    /// The edit `Φ(h) − h` of rows `h` in their own dtype as one graph node (`low_rank.rs`),
    /// for the kinds and settings that have one; `None` leaves it to [`Self::forward`].
    fn delta(&self, _h: &Tensor, _ctx: &mut Ctx) -> candle_core::Result<Option<Tensor>> {
        Ok(None)
    }
    /// Trainable parameters with their canonical names.
    fn params(&self) -> Vec<(String, Var)>;
    /// Saved but not optimised (pyreft's unused DiReFT projection bias).
    fn extra_state(&self) -> Vec<(String, Var)> {
        vec![]
    }
    /// The orthonormal projection, for the kinds that have one.
    fn rotation(&self) -> Option<&Rotation> {
        None
    }
    fn rotation_mut(&mut self) -> Option<&mut Rotation> {
        None
    }
}

/// Builds a freshly initialised intervention for a model of width `hidden`.
pub fn build(spec: &InterventionSpec, hidden: usize, rng: &mut StdRng, device: &Device) -> Result<Box<dyn Intervention>> {
    let (d, r) = (hidden, spec.rank);
    let spec = spec.clone();
    Ok(match spec.kind {
        Kind::Loreft => {
            let rotation = Rotation::random(d, r, rng, device)?;
            Box::new(loreft::Loreft { rotation, source: Affine::new(d, r, true, rng, device)?, spec })
        }
        Kind::DireftOrth => {
            let rotation = Rotation::random(d, r, rng, device)?;
            Box::new(direft_orth::DireftOrth { rotation, source: Affine::new(d, r, true, rng, device)?, spec })
        }
        Kind::Direft => {
            let source = Affine::new(d, r, true, rng, device)?;
            let proj = Affine::new(d, r, spec.add_bias, rng, device)?;
            Box::new(direft::Direft { source, proj, spec })
        }
        Kind::Noreft => {
            let source = Affine::new(d, r, true, rng, device)?;
            let proj = Affine::new(d, r, spec.add_bias, rng, device)?;
            Box::new(noreft::Noreft { source, proj, spec })
        }
        Kind::Consreft => {
            let rotation = Rotation::random(d, r, rng, device)?;
            let b = common::uniform_vector(r, rng, device)?;
            Box::new(consreft::Consreft { rotation, b, spec })
        }
        Kind::Lobireft => {
            let rotation = Rotation::random(d, r, rng, device)?;
            let b = common::uniform_vector(r, rng, device)?;
            Box::new(lobireft::Lobireft { rotation, b, spec })
        }
    })
}

/// Number of trainable values, counted as pyreft's `count_parameters` does.
pub fn count_parameters(iv: &dyn Intervention) -> usize {
    iv.params().iter().chain(iv.extra_state().iter()).map(|(_, v)| v.elem_count()).sum()
}
