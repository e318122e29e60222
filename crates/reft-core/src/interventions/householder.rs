//! `Rc = B·H(A)` of `rotation.rs` as one op with a closed-form backward, computed on the host.
//!
//! Built from tensor ops, the map is about 7 tiny kernels per reflection, `2r` reflections
//! (the parameter's and the base's) forward and two or three times that backward: with rank 8
//! about 350 ops per intervention and step, 10,000 for an all-layer LoReFT on a 30-layer model.
//! Each is microseconds of arithmetic on a `d×r` matrix but a kernel launch, an allocation and a
//! graph node; on a GPU those launches rival the model's own work. Here the whole map is one op:
//! `d·r` values go to the host, `O(d·r²)` f64 arithmetic runs there, and `d·r` values come back,
//! forward and backward. On the CPU this is always the path; on a GPU only with
//! `REFT_ROTATION=host` (see `rotation::host_map`).
//!
//! Forward, with `vᵢ = eᵢ + tril₋₁(A)[:, i]`, `τᵢ = 2/‖vᵢ‖²`, `Hᵢ = I − τᵢvᵢvᵢᵀ`:
//! `M = H₀H₁⋯H_{r−1}E`, `Rc = B·(−M)` with `B = U₀⋯U_{r−1}·S` (the base's reflections and signs).
//! Backward, for `G = ∂L/∂Rc`: `∂L/∂M = −S·U_{r−1}⋯U₀·G` (reflections are symmetric), then for
//! `i = 0, 1, …` with `D = ∂L/∂(HᵢN)`, `N = Hᵢ·(HᵢN)` (a reflection is its own inverse, so no
//! intermediate is stored), `w = vᵢᵀN`, `z = vᵢᵀD`:
//! `∂N = D − τᵢvᵢzᵀ`, `∂τᵢ = −z·w`, `∂vᵢ = −τᵢ(D·w + N·z) − τᵢ²·∂τᵢ·vᵢ`, `∂A[k, i] = ∂vᵢ[k]` for `k > i`.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use std::sync::Arc;

/// The fixed base `B` as reflections: vectors `u` (`d×r`, row-major), their `τ`s, and the row
/// signs `S` (`d`).
#[derive(Debug)]
pub(crate) struct HostBase {
    pub u: Vec<f64>,
    pub tau: Vec<f64>,
    pub signs: Vec<f64>,
}

/// `x ← x − τ·u(uᵀx)` for the `i`-th column `u` of `vecs` (`d×r`) and `x` `d×r`.
fn reflect(x: &mut [f64], vecs: &[f64], i: usize, tau: f64, d: usize, r: usize) {
    let mut proj = vec![0f64; r];
    for k in 0..d {
        let uk = vecs[k * r + i];
        if uk != 0.0 {
            for j in 0..r {
                proj[j] += uk * x[k * r + j];
            }
        }
    }
    for k in 0..d {
        let s = tau * vecs[k * r + i];
        if s != 0.0 {
            for j in 0..r {
                x[k * r + j] -= s * proj[j];
            }
        }
    }
}

/// The Householder vectors `vᵢ` (columns of a `d×r` matrix) and their `τ`s for parameter `a`.
fn vectors(a: &[f64], d: usize, r: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; d * r];
    let mut sq = vec![0f64; r];
    for k in 0..d {
        for i in 0..r {
            let x = match k.cmp(&i) {
                std::cmp::Ordering::Greater => a[k * r + i],
                std::cmp::Ordering::Equal => 1.0,
                std::cmp::Ordering::Less => 0.0,
            };
            v[k * r + i] = x;
            sq[i] += x * x;
        }
    }
    (v, sq.into_iter().map(|s| 2.0 / s).collect())
}

/// `Rc` for parameter `a` (`d×r`, row-major).
pub(crate) fn forward(a: &[f64], base: &HostBase, d: usize, r: usize) -> Vec<f64> {
    let (v, tau) = vectors(a, d, r);
    let mut m = forward_m(&v, &tau, d, r);
    for k in 0..d {
        let s = -base.signs[k];
        for j in 0..r {
            m[k * r + j] *= s;
        }
    }
    for i in (0..r).rev() {
        if base.tau[i] != 0.0 {
            reflect(&mut m, &base.u, i, base.tau[i], d, r);
        }
    }
    m
}

/// `∂L/∂A` for parameter `a` and `g = ∂L/∂Rc`.
pub(crate) fn backward(a: &[f64], g: &[f64], base: &HostBase, d: usize, r: usize) -> Vec<f64> {
    let (v, tau) = vectors(a, d, r);
    // ∂L/∂M = −S·U_{r−1}⋯U₀·G.
    let mut dm = g.to_vec();
    for i in 0..r {
        if base.tau[i] != 0.0 {
            reflect(&mut dm, &base.u, i, base.tau[i], d, r);
        }
    }
    for k in 0..d {
        let s = -base.signs[k];
        for j in 0..r {
            dm[k * r + j] *= s;
        }
    }
    // M itself, then peel one reflection per step.
    let mut n = forward_m(&v, &tau, d, r);
    let mut da = vec![0f64; d * r];
    for i in 0..r {
        reflect(&mut n, &v, i, tau[i], d, r); // N = Hᵢ·(HᵢN)
        let (mut w, mut z) = (vec![0f64; r], vec![0f64; r]);
        for k in 0..d {
            let vk = v[k * r + i];
            for j in 0..r {
                w[j] += vk * n[k * r + j];
                z[j] += vk * dm[k * r + j];
            }
        }
        let dtau: f64 = -z.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        for k in (i + 1)..d {
            let (dw, nz): (f64, f64) = (0..r).fold((0.0, 0.0), |(p, q), j| (p + dm[k * r + j] * w[j], q + n[k * r + j] * z[j]));
            da[k * r + i] = -tau[i] * (dw + nz) - tau[i] * tau[i] * dtau * v[k * r + i];
        }
        // ∂N = Hᵢ·D.
        for k in 0..d {
            let s = tau[i] * v[k * r + i];
            for j in 0..r {
                dm[k * r + j] -= s * z[j];
            }
        }
    }
    da
}

/// `M = H₀⋯H_{r−1}E`.
fn forward_m(v: &[f64], tau: &[f64], d: usize, r: usize) -> Vec<f64> {
    let mut m = vec![0f64; d * r];
    for i in 0..r.min(d) {
        m[i * r + i] = 1.0;
    }
    for i in (0..r).rev() {
        reflect(&mut m, v, i, tau[i], d, r);
    }
    m
}

/// The map as a candle op on the parameter `A` (f32 or f64, any device).
pub(crate) struct Householder {
    pub base: Arc<HostBase>,
}

impl Householder {
    fn host(&self, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
        let (d, r) = l.shape().dims2()?;
        let Some((lo, hi)) = l.contiguous_offsets() else { candle_core::bail!("householder: the parameter is not contiguous") };
        if self.base.tau.len() != r || self.base.signs.len() != d {
            candle_core::bail!("householder: a {d}×{r} parameter against a base of rank {}", self.base.tau.len());
        }
        Ok(match s {
            CpuStorage::F32(x) => {
                let a: Vec<f64> = x[lo..hi].iter().map(|&v| v as f64).collect();
                CpuStorage::F32(forward(&a, &self.base, d, r).into_iter().map(|v| v as f32).collect())
            }
            CpuStorage::F64(x) => CpuStorage::F64(forward(&x[lo..hi], &self.base, d, r)),
            _ => candle_core::bail!("householder: f32 or f64 parameter expected"),
        })
    }
}

impl CustomOp1 for Householder {
    fn name(&self) -> &'static str {
        "householder-rotation"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((self.host(s, l)?, l.shape().clone()))
    }

    // One copy each way per step; the arithmetic is too small for a kernel of its own.
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let out = self.host(&s.to_cpu_storage()?, l)?;
        Ok((s.device().storage_from_cpu_storage(&out)?, l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (d, r) = arg.dims2()?;
        let a: Vec<f64> = arg.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let g: Vec<f64> = grad.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let da = backward(&a, &g, &self.base, d, r);
        Tensor::from_vec(da, (d, r), &candle_core::Device::Cpu)?.to_dtype(arg.dtype())?.to_device(arg.device()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rotation::Rotation;
    use candle_core::{DType, Device, Result, Tensor};
    use rand::SeedableRng;

    /// The fused op against the tensor-op composite, values and gradients, in f64 and f32, at
    /// shapes with `r` = 1, `r` small and `r` = `d`.
    #[test]
    fn fused_map_matches_the_composite() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (d, r) in [(7usize, 1usize), (16, 4), (9, 9), (40, 8)] {
            let rot = Rotation::random(d, r, &mut rng, &dev)?;
            rot.a.set(&Tensor::randn(0f32, 0.4, (d, r), &dev)?)?;
            let c = Tensor::randn(0f64, 1.0, (d, r), &dev)?;
            for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-5)] {
                let fused = rot.matrix_in(true, dtype)?;
                let plain = rot.matrix_composite(true, dtype)?;
                let dv = (&fused - &plain)?.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                assert!(dv < tol, "{d}×{r} {dtype:?}: values differ by {dv}");
                let grad = |m: &Tensor| -> Result<Tensor> {
                    let loss = (m.to_dtype(DType::F64)? * &c)?.sum_all()?;
                    Ok(loss.backward()?.get(rot.a.as_tensor()).expect("gradient").to_dtype(DType::F64)?)
                };
                let (gf, gp) = (grad(&fused)?, grad(&plain)?);
                let scale = gp.abs()?.max_all()?.to_scalar::<f64>()?.max(1.0);
                let dg = (gf - gp)?.abs()?.max_all()?.to_scalar::<f64>()?;
                assert!(dg < tol * 10.0 * scale, "{d}×{r} {dtype:?}: gradients differ by {dg}");
            }
        }
        Ok(())
    }
}
