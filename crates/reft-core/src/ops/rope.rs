//! Rotary position embeddings in the HF "rotate_half" layout (the first and second halves of
//! each head are the two rotation coordinates). Tables are built on the host in f64 from
//! `inv_freq`, so llama3-style frequency scaling is just a different `inv_freq`.
//!
//! `apply_rope` is `x·cos + rotate_half(x)·sin`. On the CPU (f32/f64) it is one fused op whose
//! backward is the inverse rotation; elsewhere the same backward on the lean path of `attach.rs`
//! (the composite's seven primitives kept copies of `x` and built dead gradients for the tables).

use super::attach::attach1;
use super::cpu_kernel::{for_rows, on_storage, on_tensors, Float, Kernel, Out};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor, D};
use std::sync::Arc;

/// Per-position cos/sin tables gathered for one batch: `[b, 1, t, head_dim]`.
#[derive(Clone)]
pub struct RopeTables {
    pub cos: Tensor,
    pub sin: Tensor,
    /// The same tables on the host (as f32, the values the tensors were made from), `[b, t, head_dim]`.
    host: Arc<(Vec<f32>, Vec<f32>)>,
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
        let (b, t) = (positions.len(), positions.first().map(|p| p.len()).unwrap_or(0));
        let half = inv_freq.len();
        let (cos, sin) = host_tables(inv_freq, positions);
        let shape = (b, 1, t, half * 2);
        Ok(Self {
            cos: Tensor::from_slice(&cos, shape, device)?.to_dtype(dtype)?,
            sin: Tensor::from_slice(&sin, shape, device)?.to_dtype(dtype)?,
            host: Arc::new((cos, sin)),
        })
    }
}

/// The cos and sin tables of `positions` (`[b][t]`) as f32 on the host, `[b, t, 2·inv_freq.len()]`,
/// computed in f64 (what [`RopeTables::new`] uploads; the static decoding step uploads them too).
///
/// Each distinct position's angles are computed once: rows share positions (all of them without
/// padding) and a head's two halves share angles, so the 7B anchor batch (8 × 512 positions,
/// 64 frequencies) takes 32,768 sine/cosine pairs instead of a million (about 11 ms on this
/// project's CPU, before a step's first kernel). The values are the same to the bit.
pub fn host_tables(inv_freq: &[f64], positions: &[Vec<i64>]) -> (Vec<f32>, Vec<f32>) {
    let half = inv_freq.len();
    let count: usize = positions.iter().map(|p| p.len()).sum();
    let angles = |p: i64, cos: &mut Vec<f32>, sin: &mut Vec<f32>| {
        for f in inv_freq {
            let a = p as f64 * f;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    };
    let (lo, hi) = positions.iter().flatten().fold((i64::MAX, i64::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    // A table over [lo, hi] when it is not much larger than the positions themselves.
    let span = if count == 0 { 0 } else { (hi - lo) as u128 + 1 };
    let table = (count > 0 && span <= 2 * count as u128 + 64).then(|| {
        let (mut c, mut s) = (Vec::with_capacity(span as usize * half), Vec::with_capacity(span as usize * half));
        (lo..=hi).for_each(|p| angles(p, &mut c, &mut s));
        (c, s)
    });
    let (mut cos, mut sin) = (Vec::with_capacity(count * half * 2), Vec::with_capacity(count * half * 2));
    let mut row = (Vec::with_capacity(half), Vec::with_capacity(half));
    for &p in positions.iter().flatten() {
        let (c, s): (&[f32], &[f32]) = match &table {
            Some((tc, ts)) => {
                let at = (p - lo) as usize * half;
                (&tc[at..at + half], &ts[at..at + half])
            }
            None => {
                row.0.clear();
                row.1.clear();
                angles(p, &mut row.0, &mut row.1);
                (&row.0, &row.1)
            }
        };
        // emb = cat(freqs, freqs): the two halves share the same angles.
        for _ in 0..2 {
            cos.extend_from_slice(c);
            sin.extend_from_slice(s);
        }
    }
    (cos, sin)
}

/// The rotation of each `head_dim` row of a contiguous `[b, heads, t, head_dim]` tensor, or its
/// transpose (`inverse`, the backward): with `c, s` the row's tables and `h` half the row,
/// `y[i] = x[i]c[i] − x[i+h]s[i]`, `y[i+h] = x[i+h]c[i+h] + x[i]s[i+h]`.
struct RopeKernel<'a> {
    cos: &'a [f32],
    sin: &'a [f32],
    heads: usize,
    t: usize,
    hd: usize,
    inverse: bool,
}

impl Kernel for RopeKernel<'_> {
    const NAME: &'static str = "rope";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        let x = inputs[0];
        let (t, hd) = (self.t, self.hd);
        let half = hd / 2;
        let mut y = vec![T::from(0.0); x.len()];
        let out = Out::new(&mut y);
        for_rows(x.len() / hd.max(1), hd, |rows| {
            // SAFETY: disjoint row ranges.
            let y = unsafe { out.part(rows.start * hd, rows.end * hd) };
            for (row, y) in rows.zip(y.chunks_mut(hd)) {
                let x = &x[row * hd..(row + 1) * hd];
                let tr = (row / (self.heads * t)) * t + row % t;
                let (c, s) = (&self.cos[tr * hd..(tr + 1) * hd], &self.sin[tr * hd..(tr + 1) * hd]);
                for i in 0..half {
                    let (a, b) = (x[i].to(), x[i + half].to());
                    if self.inverse {
                        y[i] = T::from(a * c[i] as f64 + b * s[i + half] as f64);
                        y[i + half] = T::from(b * c[i + half] as f64 - a * s[i] as f64);
                    } else {
                        y[i] = T::from(a * c[i] as f64 - b * s[i] as f64);
                        y[i + half] = T::from(b * c[i + half] as f64 + a * s[i + half] as f64);
                    }
                }
            }
        });
        vec![y]
    }
}

struct Rope {
    host: Arc<(Vec<f32>, Vec<f32>)>,
    heads: usize,
    t: usize,
    hd: usize,
}

impl Rope {
    fn kernel(&self, inverse: bool) -> RopeKernel<'_> {
        RopeKernel { cos: &self.host.0, sin: &self.host.1, heads: self.heads, t: self.t, hd: self.hd, inverse }
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((on_storage(&self.kernel(false), &[(storage, layout)])?, layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(on_tensors(&self.kernel(true), &[grad], arg.shape())?.pop())
    }
}

/// Applies the rotation to `x` of shape `[b, heads, t, head_dim]`.
pub fn apply_rope(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    let (b, heads, t, hd) = x.dims4()?;
    let fused = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && hd % 2 == 0;
    if fused && tables.cos.dims() == [b, 1, t, hd] {
        return x.contiguous()?.apply_op1(Rope { host: tables.host.clone(), heads, t, hd });
    }
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(x) && hd % 2 == 0 && tables.cos.dims() == [b, 1, t, hd] && tables.cos.dtype() == x.dtype() {
        return super::cuda_fused::apply_rope(x, &tables.cos, &tables.sin);
    }
    apply_rope_lean(x, tables)
}

/// The input gradient of [`apply_rope`] for the output gradient `g` `[b, heads, t, head_dim]`:
/// the inverse rotation, on the path the forward takes (see `rms_norm_vjp` in `norm.rs`).
pub(crate) fn rope_vjp(g: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    let (b, heads, t, hd) = g.dims4()?;
    let fused = g.device().is_cpu() && matches!(g.dtype(), DType::F32 | DType::F64) && hd % 2 == 0;
    if fused && tables.cos.dims() == [b, 1, t, hd] {
        let rope = Rope { host: tables.host.clone(), heads, t, hd };
        return Ok(on_tensors(&rope.kernel(true), &[g], g.shape())?.remove(0));
    }
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(g) && hd % 2 == 0 && tables.cos.dims() == [b, 1, t, hd] && tables.cos.dtype() == g.dtype() {
        return super::cuda_fused::rope_backward(g, &tables.cos, &tables.sin);
    }
    g.broadcast_mul(&tables.cos)? + rotate_half(&g.broadcast_mul(&tables.sin)?, true)?
}

/// [`apply_rope`] of projection rows `x` `[b, t, heads, head_dim]`: `[b, heads, t, head_dim]`,
/// contiguous. Without a graph on CUDA the fused kernel reads the rows as they are, instead of
/// a transposing copy first.
pub(crate) fn rope_heads(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    {
        let (b, t, _, hd) = x.dims4()?;
        if !x.track_op() && super::cuda_fused::applies(x) && hd % 2 == 0 && tables.cos.dims() == [b, 1, t, hd] && tables.cos.dtype() == x.dtype() {
            return super::cuda_fused::rope_from_rows(x, &tables.cos, &tables.sin);
        }
    }
    apply_rope(&x.transpose(1, 2)?.contiguous()?, tables)
}

/// [`rope_vjp`] of `g` `[b, heads, t, head_dim]` as rows `[b, t, heads, head_dim]`, contiguous
/// (on CUDA written so by the kernel, instead of a transposing copy after it).
pub(crate) fn rope_vjp_rows(g: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    {
        let (b, _, t, hd) = g.dims4()?;
        if super::cuda_fused::applies(g) && hd % 2 == 0 && tables.cos.dims() == [b, 1, t, hd] && tables.cos.dtype() == g.dtype() {
            return super::cuda_fused::rope_backward_to_rows(g, &tables.cos, &tables.sin);
        }
    }
    rope_vjp(g, tables)?.transpose(1, 2)?.contiguous()
}

/// `[−x₂, x₁]` of the two halves of the last dimension (`transpose`: `[x₂, −x₁]`, its inverse).
fn rotate_half(x: &Tensor, transpose: bool) -> Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
    if transpose {
        Tensor::cat(&[&x2, &x1.neg()?], D::Minus1)
    } else {
        Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)
    }
}

/// RoPE off the native kernel (CUDA, half precision): the forward outside the graph; the
/// backward is the transposed rotation `g·cos + rotate_halfᵀ(g·sin)` and keeps no activations
/// of its own (see `attach.rs`).
#[doc(hidden)]
pub fn apply_rope_lean(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    let xd = x.detach();
    let y = (xd.broadcast_mul(&tables.cos)? + rotate_half(&xd, false)?.broadcast_mul(&tables.sin)?)?;
    let (cos, sin) = (tables.cos.clone(), tables.sin.clone());
    attach1("rope", x, y, move |_x, _y, g| {
        let dx = (g.broadcast_mul(&cos)? + rotate_half(&g.broadcast_mul(&sin)?, true)?)?;
        Ok(Some(dx))
    })
}

#[cfg(test)]
mod tests {
    use super::host_tables;

    /// Every entry computed on its own, as the tables were before they shared angles.
    fn naive(inv_freq: &[f64], positions: &[Vec<i64>]) -> (Vec<f32>, Vec<f32>) {
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for &p in positions.iter().flatten() {
            for _ in 0..2 {
                for f in inv_freq {
                    cos.push((p as f64 * f).cos() as f32);
                    sin.push((p as f64 * f).sin() as f32);
                }
            }
        }
        (cos, sin)
    }

    #[test]
    fn shared_angles_equal_the_entry_by_entry_tables() {
        let inv: Vec<f64> = (0..8).map(|i| 1.0 / 10_000f64.powf(i as f64 / 8.0)).collect();
        let cases: Vec<Vec<Vec<i64>>> = vec![
            (0..3).map(|_| (0..17).collect()).collect(),                     // unpadded rows
            vec![vec![1, 1, 1, 0, 1, 2], vec![0, 1, 2, 3, 4, 5]],            // left padding (id 1)
            vec![vec![3, 1_000_000, 7]],                                     // sparse: no table
            vec![vec![-2, 0, 5]],
            vec![vec![]],
        ];
        for positions in cases {
            assert_eq!(host_tables(&inv, &positions), naive(&inv, &positions), "{positions:?}");
        }
    }
}
