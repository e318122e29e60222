//! Rotary position embeddings in the HF "rotate_half" layout (the first and second halves of
//! each head are the two rotation coordinates). Tables are built on the host in f64 from
//! `inv_freq`, so llama3-style frequency scaling is just a different `inv_freq`.
//!
//! `apply_rope` is `x·cos + rotate_half(x)·sin`, built from differentiable primitives.

use candle_core::{DType, Device, Result, Tensor, D};

/// Per-position cos/sin tables gathered for one batch: `[b, 1, t, head_dim]`.
pub struct RopeTables {
    pub cos: Tensor,
    pub sin: Tensor,
}

impl RopeTables {
    /// Builds the tables for explicit position ids (`positions[b][t]`, may differ per row, as
    /// with left padding).
    pub fn new(
        inv_freq: &[f64],
        positions: &[Vec<i64>],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let half = inv_freq.len();
        let b = positions.len();
        let t = positions.first().map(|p| p.len()).unwrap_or(0);
        let mut cos = Vec::with_capacity(b * t * half * 2);
        let mut sin = Vec::with_capacity(b * t * half * 2);
        for row in positions {
            for &p in row {
                // emb = cat(freqs, freqs): the two halves share the same angles.
                for _rep in 0..2 {
                    for f in inv_freq {
                        let a = p as f64 * f;
                        cos.push(a.cos() as f32);
                        sin.push(a.sin() as f32);
                    }
                }
            }
        }
        let shape = (b, 1, t, half * 2);
        Ok(Self {
            cos: Tensor::from_vec(cos, shape, device)?.to_dtype(dtype)?,
            sin: Tensor::from_vec(sin, shape, device)?.to_dtype(dtype)?,
        })
    }
}

/// Applies the rotation to `x` of shape `[b, heads, t, head_dim]`.
pub fn apply_rope(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(&tables.cos)? + rotated.broadcast_mul(&tables.sin)?
}
