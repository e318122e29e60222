//! A Llama layer's q, k and v weights packed into one matrix, and its gate and up weights into
//! another, so that each group is one GEMM forward and one backward (`ops/packed.rs` splits the
//! rows). The separate projections stay as row views of the packed matrices, so the op-by-op
//! graph and every other reader see the weights they saw, and the packing costs no memory
//! beyond one layer's weights while it is made.
//!
//! Decoders loaded onto CUDA pack by default (`ops::pack_projections_on`): there a layer's
//! q/k/v were three GEMMs (two of them skinny with grouped-query heads: 2048 → 256 on the 1.1B
//! model) and the backward added three activation-sized input gradients.

use super::llama::{Decoder, LayerWeights};
use crate::ops::FrozenLinear;
use candle_core::{Result, Tensor};

/// The packed weights of one layer.
#[derive(Clone, Debug)]
pub struct Packed {
    /// `[(nh + 2·nkv)·hd, d]`: the q, k and v weights in that order (biases likewise).
    pub qkv: FrozenLinear,
    /// `[2f, d]`: the gate weight, then up's.
    pub gate_up: FrozenLinear,
}

impl Decoder {
    /// Packs every layer's projections (see the module); a no-op for layers already packed.
    pub fn pack_projections(&mut self) -> Result<()> {
        for w in &mut self.layers {
            w.pack()?;
        }
        Ok(())
    }

    /// [`Self::pack_projections`] when `ops::pack_projections_on` says so for its device.
    pub(crate) fn packed_if_on(mut self) -> Result<Self> {
        if crate::ops::pack_projections_on(&self.device) {
            self.pack_projections()?;
        }
        Ok(self)
    }
}

impl LayerWeights {
    /// Packs q/k/v and gate/up into [`Packed`] and leaves the separate projections as views.
    pub fn pack(&mut self) -> Result<()> {
        if self.packed.is_some() {
            return Ok(());
        }
        let qkv = pack(&mut [&mut self.q, &mut self.k, &mut self.v])?;
        let gate_up = pack(&mut [&mut self.gate, &mut self.up])?;
        self.packed = Some(Packed { qkv, gate_up });
        Ok(())
    }
}

/// One `FrozenLinear` of the projections' weights stacked by rows (and their biases, zeros where
/// one has none while another has), each projection then a row view of it.
fn pack(parts: &mut [&mut FrozenLinear]) -> Result<FrozenLinear> {
    let weights: Vec<Tensor> = parts.iter().map(|p| p.weight.clone()).collect();
    let weight = Tensor::cat(&weights, 0)?.contiguous()?;
    let bias = if parts.iter().any(|p| p.bias.is_some()) {
        let biases = parts
            .iter()
            .map(|p| match &p.bias {
                Some(b) => b.to_dtype(weight.dtype()),
                None => Tensor::zeros(p.out_dim(), weight.dtype(), weight.device()),
            })
            .collect::<Result<Vec<_>>>()?;
        Some(Tensor::cat(&biases, 0)?)
    } else {
        None
    };
    let mut at = 0;
    for p in parts.iter_mut() {
        let n = p.out_dim();
        p.weight = weight.narrow(0, at, n)?;
        at += n;
    }
    Ok(FrozenLinear { weight, bias })
}
