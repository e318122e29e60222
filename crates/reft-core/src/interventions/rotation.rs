//! The low-rank orthonormal projection `R` (stored as `Rc = Rᵀ`, `d×r`, orthonormal columns)
//! used by LoReFT, ConsReFT, LobiReFT and the orthogonal DiReFT variant.
//!
//! Parametrization (same family as `torch.nn.utils.parametrizations.orthogonal`, which pyreft
//! uses: Householder map with a fixed base, "dynamic trivialization without re-basing"):
//!
//! ```text
//! Rc(A) = B · H(A),   H(A) = −H₁H₂⋯H_r·E,   Hᵢ = I − τᵢ vᵢvᵢᵀ,  vᵢ = eᵢ + tril₋₁(A)[:, i],
//! τᵢ = 2 / ‖vᵢ‖²,     E = I[:, :r]
//! ```
//!
//! `A` (`d×r`, only its strictly-lower part matters; zero at init) is the trainable tensor, as
//! torch's `original`. `B` is a fixed orthogonal `d×d` matrix whose first `r` columns are the
//! initial `Rc₀`. Torch stores `B` densely (`d²` floats per intervention — pyreft's memory
//! complaint); we store it as the `r` Householder reflections of `Rc₀`'s QR factorisation, so
//! `B` costs `d·r` floats and `B·M` costs `O(d·r²)`. Its other columns are a different (equally
//! arbitrary) completion than torch's random one, so the trajectory of `A` differs from torch's
//! while `Rc` is exactly orthonormal (a product of reflections) at every step.
//!
//! The completion matters for training, not for the function: Adam normalises each coordinate of
//! `A`, and the coordinates of `A` are directions in `B`'s basis. The Householder completion is
//! nearly the hidden state's own coordinate basis; torch's is random. Given torch's dense base
//! ([`Rotation::with_dense_base`]), the trajectory is pyreft's step for step
//! (`tests/parity.rs`, `loreft_training_trajectory_matches_pyreft_given_its_base`).

use super::householder::{HostBase, Householder};
use candle_core::{DType, Device, Result, Tensor, Var};
use std::sync::Arc;

/// A trainable orthonormal `d×r` matrix.
pub struct Rotation {
    /// Trainable `d×r` parameter.
    pub a: Var,
    /// `Rc₀`, `d×r`: the matrix at `A = 0`, from which the base reflections are derived.
    pub base: Tensor,
    /// Householder vectors of the base, `d×r` (f64); `signs` `[d, 1]`.
    pub(super) base_u: Tensor,
    pub(super) base_signs: Tensor,
    /// The base's reflections in WY form: `U₀⋯U_{r−1} = I − U·T·Uᵀ`, `T` `r×r` (f64).
    pub(super) base_t: Tensor,
    /// The same reflections and signs on the host, for the fused op (`householder.rs`).
    host_base: Arc<HostBase>,
    pub(super) tril_mask: Tensor,
    pub(super) eye: Tensor,
    /// `r×r` identity and strictly-upper mask, for `wy_factor`.
    pub(super) eye_r: Tensor,
    pub(super) striu_r: Tensor,
    /// An explicit dense `d×d` base (torch's layout) used instead of the reflections; `None`
    /// for the compact Householder completion.
    pub dense_base: Option<Tensor>,
    /// When set, `matrix` returns this Var instead of `B·H(A)`: it exposes the ambient gradient
    /// `∂L/∂Rc` (what pyreft fixtures record). Tests only; never trained.
    pub probe: Option<Var>,
}

/// Householder QR of an orthonormal `d×r` matrix in f64: returns the reflection vectors
/// (`d×r`, unit-leading-entry form), their `τ`s, and the signs `s` with `Q·diag(s) = M`.
fn householder_qr(m: &[f64], d: usize, r: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec(); // row-major d×r, overwritten by R
    let mut us = vec![0f64; d * r];
    let mut taus = vec![0f64; r];
    for j in 0..r {
        let norm: f64 = (j..d).map(|i| a[i * r + j].powi(2)).sum::<f64>().sqrt();
        let x0 = a[j * r + j];
        let alpha = if x0 >= 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (j..d).map(|i| a[i * r + j]).collect();
        v[0] -= alpha;
        let v0 = v[0];
        if v0.abs() < 1e-300 {
            // Column already aligned: identity reflection.
            taus[j] = 0.0;
            us[j * r + j] = 1.0;
            continue;
        }
        for x in v.iter_mut() {
            *x /= v0;
        }
        let vv: f64 = v.iter().map(|x| x * x).sum();
        let tau = 2.0 / vv;
        for (k, i) in (j..d).enumerate() {
            us[i * r + j] = v[k];
        }
        taus[j] = tau;
        for c in j..r {
            let dot: f64 = (j..d).enumerate().map(|(k, i)| v[k] * a[i * r + c]).sum();
            for (k, i) in (j..d).enumerate() {
                a[i * r + c] -= tau * v[k] * dot;
            }
        }
    }
    let signs: Vec<f64> = (0..r).map(|j| if a[j * r + j] >= 0.0 { 1.0 } else { -1.0 }).collect();
    (us, taus, signs)
}

impl Rotation {
    /// A rotation whose initial value is `rc0` (`d×r`, orthonormal columns).
    pub fn from_initial(rc0: &Tensor) -> Result<Self> {
        let (d, r) = rc0.dims2()?;
        let device = rc0.device().clone();
        let m: Vec<f64> = rc0.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let (us, taus, signs) = householder_qr(&m, d, r);
        let mut sv = vec![1f32; d];
        for (j, s) in signs.iter().enumerate() {
            sv[j] = *s as f32;
        }
        let mut mask = vec![0f32; d * r];
        let mut eye = vec![0f32; d * r];
        for i in 0..d {
            for j in 0..r {
                if i > j {
                    mask[i * r + j] = 1.0;
                }
                if i == j {
                    eye[i * r + j] = 1.0;
                }
            }
        }
        let host_base = Arc::new(HostBase { u: us.clone(), tau: taus.clone(), signs: sv.iter().map(|&s| s as f64).collect() });
        let base_t = Tensor::from_vec(larft(&us, &taus, d, r), (r, r), &device)?;
        let striu: Vec<f32> = (0..r * r).map(|x| if x % r > x / r { 1.0 } else { 0.0 }).collect();
        Ok(Self {
            host_base,
            base_t,
            eye_r: Tensor::eye(r, DType::F32, &device)?,
            striu_r: Tensor::from_vec(striu, (r, r), &device)?,
            a: Var::zeros((d, r), DType::F32, &device)?,
            base: rc0.to_dtype(DType::F32)?,
            // f64, as the host copy: an f32 copy would not be exactly the reflections of `τ`.
            base_u: Tensor::from_vec(us, (d, r), &device)?,
            base_signs: Tensor::from_vec(sv, (d, 1), &device)?,
            tril_mask: Tensor::from_vec(mask, (d, r), &device)?,
            eye: Tensor::from_vec(eye, (d, r), &device)?,
            dense_base: None,
            probe: None,
        })
    }

    /// A rotation over an explicit orthogonal `d×d` base `b`, as torch's parametrization stores
    /// it (`Rc = B·H(A)`, `A = 0` at the start, so the initial value is `b`'s first `r` columns).
    /// `d²` floats per intervention instead of `d·r`; for reproducing pyreft's training exactly.
    pub fn with_dense_base(b: &Tensor, r: usize) -> Result<Self> {
        let (d, d2) = b.dims2()?;
        if d != d2 || r == 0 || r > d {
            candle_core::bail!("a dense rotation base must be d×d with 0 < r ≤ d, got {d}×{d2} and r = {r}")
        }
        let b = b.to_dtype(DType::F32)?.contiguous()?;
        let mut rot = Self::from_initial(&b.narrow(1, 0, r)?.contiguous()?)?;
        rot.dense_base = Some(b);
        Ok(rot)
    }

    /// A random orthonormal initial value (QR of a Gaussian, as `torch.nn.init.orthogonal_`).
    pub fn random(d: usize, r: usize, rng: &mut impl rand::Rng, device: &Device) -> Result<Self> {
        use rand_distr_normal as normal;
        let g: Vec<f64> = (0..d * r).map(|_| normal(rng)).collect();
        let (us, taus, signs) = householder_qr(&g, d, r);
        // Q·diag(s) of the Gaussian's QR, materialised on the host.
        let mut q = vec![0f64; d * r];
        for j in 0..r {
            let mut col = vec![0f64; d];
            col[j] = signs[j];
            for i in (0..r).rev() {
                let dot: f64 = (0..d).map(|k| us[k * r + i] * col[k]).sum();
                for k in 0..d {
                    col[k] -= taus[i] * us[k * r + i] * dot;
                }
            }
            for k in 0..d {
                q[k * r + j] = col[k];
            }
        }
        let q: Vec<f32> = q.into_iter().map(|x| x as f32).collect();
        Self::from_initial(&Tensor::from_vec(q, (d, r), device)?)
    }

    /// Restores a saved state: the initial value and the trainable parameter.
    pub fn from_state(base: &Tensor, a: &Tensor) -> Result<Self> {
        let rot = Self::from_initial(base)?;
        rot.a.set(&a.to_dtype(DType::F32)?)?;
        Ok(rot)
    }

    /// `Rc = B·H(A)`, `d×r`, computed in f32 (or f64 when `f64` is set, for gradient
    /// checks). With `track` false the result carries no graph.
    pub fn matrix(&self, track: bool) -> Result<Tensor> {
        self.matrix_in(track, DType::F32)
    }

    /// [`Self::matrix`] computed in `dtype` (f32 or f64).
    pub fn matrix_in(&self, track: bool, dtype: DType) -> Result<Tensor> {
        if let Some(p) = &self.probe {
            let t = if track { p.as_tensor().clone() } else { p.as_tensor().detach() };
            return t.to_dtype(dtype);
        }
        let a = if track { self.a.as_tensor().clone() } else { self.a.as_tensor().detach() };
        if self.dense_base.is_none() && host_map(a.device()) {
            return a.to_dtype(dtype)?.contiguous()?.apply_op1(Householder { base: self.host_base.clone() });
        }
        self.composite(a, dtype)
    }

    /// The same map built from tensor ops (the dense base's path; tests compare the fused op
    /// against it).
    #[doc(hidden)]
    pub fn matrix_composite(&self, track: bool, dtype: DType) -> Result<Tensor> {
        let a = if track { self.a.as_tensor().clone() } else { self.a.as_tensor().detach() };
        self.composite(a, dtype)
    }

    fn composite(&self, a: Tensor, dtype: DType) -> Result<Tensor> {
        let m = self.reflections(&a.to_dtype(dtype)?.unsqueeze(0)?)?;
        if let Some(b) = &self.dense_base {
            return b.to_dtype(dtype)?.matmul(&m.squeeze(0)?);
        }
        let base = |t: &Tensor| t.to_dtype(dtype)?.unsqueeze(0);
        apply_wy_base(&m, &base(&self.base_signs)?, &base(&self.base_u)?, &base(&self.base_t)?)?.squeeze(0)
    }

    /// `H(A) = −H₁⋯H_r·E` for a stack of parameters `a` `[L, d, r]` of this rotation's shape
    /// (the masks are the same for every rotation of a shape: `rotation_batch.rs` passes many).
    pub(super) fn reflections(&self, a: &Tensor) -> Result<Tensor> {
        let dtype = a.dtype();
        let r = a.dim(2)?;
        let eye = self.eye.to_dtype(dtype)?;
        let v = a.broadcast_mul(&self.tril_mask.to_dtype(dtype)?)?.broadcast_add(&eye)?; // columns vᵢ
        // Compact WY form: H₀⋯H_{r−1} = I − V·T·Vᵀ, with T from the Gram matrix (UT transform,
        // `wy_factor`). About 30 small kernels instead of 5 per reflection, and matmuls rather
        // than reductions; VᵀE is the top r×r block of V, transposed.
        let t = self.wy_factor(&v.transpose(1, 2)?.matmul(&v)?)?;
        let m = eye.broadcast_sub(&v.matmul(&t.matmul(&v.narrow(1, 0, r)?.transpose(1, 2)?)?)?)?;
        // torch multiplies by sign(diag X) of its "−I" initial parameter: H(0) = −E, so −1.
        m.neg()
    }

    /// `T = (½·diag(G) + striu(G))⁻¹` for the Gram matrices `G = VᵀV` `[L, r, r]` of unit-leading
    /// Householder vectors with `τᵢ = 2/‖vᵢ‖²` (Joffrain et al., "Accumulating Householder
    /// transformations, revisited", 2006). With `D = ½·diag(G)` and `K = D⁻¹·striu(G)`
    /// (nilpotent), `T = (I + K)⁻¹·D⁻¹` and `(I + K)⁻¹ = (I − K)(I + K²)(I + K⁴)⋯` up to `K^r = 0`.
    fn wy_factor(&self, g: &Tensor) -> Result<Tensor> {
        let r = g.dim(1)?;
        let (eye, striu) = (self.eye_r.to_dtype(g.dtype())?, self.striu_r.to_dtype(g.dtype())?);
        let half = (g.broadcast_mul(&eye)?.sum_keepdim(2)? * 0.5)?; // [L, r, 1]
        let k = g.broadcast_mul(&striu)?.broadcast_div(&half)?;
        let mut inv = eye.broadcast_sub(&k)?;
        let mut power = k.matmul(&k)?;
        let mut span = 2;
        while span < r {
            inv = inv.matmul(&eye.broadcast_add(&power)?)?;
            power = power.matmul(&power)?;
            span *= 2;
        }
        inv.broadcast_div(&half.transpose(1, 2)?)
    }
}

/// `B·M` for a stack `m` `[L, d, r]`, each with its base's reflections in WY form: signs
/// `[L, d, 1]`, vectors `u` `[L, d, r]` and factors `t` `[L, r, r]` (constants).
pub(super) fn apply_wy_base(m: &Tensor, signs: &Tensor, u: &Tensor, t: &Tensor) -> Result<Tensor> {
    let m = m.broadcast_mul(signs)?;
    &m - u.matmul(&t.matmul(&u.transpose(1, 2)?.matmul(&m)?)?)?
}

/// LAPACK's `larft` (forward, columnwise) on the host: the upper-triangular `T` with
/// `U₀U₁⋯U_{r−1} = I − U·T·Uᵀ` for reflections `Uᵢ = I − τᵢuᵢuᵢᵀ` (`u` `d×r` row-major). A zero
/// `τ` (an identity reflection) gives a zero row and column.
fn larft(u: &[f64], tau: &[f64], d: usize, r: usize) -> Vec<f64> {
    let mut t = vec![0f64; r * r];
    for i in 0..r {
        t[i * r + i] = tau[i];
        let w: Vec<f64> = (0..i).map(|l| -tau[i] * (0..d).map(|k| u[k * r + l] * u[k * r + i]).sum::<f64>()).collect();
        for a in 0..i {
            t[a * r + i] = (a..i).map(|b| t[a * r + b] * w[b]).sum();
        }
    }
    t
}

/// Whether the map runs as the host op of `householder.rs` for a parameter on `device`: always on
/// the CPU. On a GPU the op would stall the stream twice per intervention and step (the
/// parameter comes to the host mid-forward, its gradient mid-backward) and run `O(d·r²)` host
/// arithmetic on the critical path, where the composite's small kernels queue asynchronously
/// behind the model's; which costs less there is unmeasured, so the composite stays the default
/// and `REFT_ROTATION=host` picks the host op (`=graph` the composite, on every device).
pub(super) fn host_map(device: &Device) -> bool {
    static CHOICE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let forced = *CHOICE.get_or_init(|| match std::env::var("REFT_ROTATION").as_deref() {
        Ok("host") => Some(true),
        Ok("graph") => Some(false),
        _ => None,
    });
    forced.unwrap_or(device.is_cpu())
}

/// A standard normal sample (Box–Muller), to avoid another dependency.
fn rand_distr_normal(rng: &mut impl rand::Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn initial_value_is_reproduced_and_orthonormal() -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let rot = Rotation::random(16, 4, &mut rng, &Device::Cpu)?;
        let rc = rot.matrix(false)?;
        let diff = (rc.clone() - &rot.base)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "B·H(0) must equal the initial value, diff {diff}");
        let gram = rc.t()?.matmul(&rc)?;
        let eye = Tensor::eye(4, DType::F32, &Device::Cpu)?;
        let err = (gram - eye)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err < 1e-5, "RcᵀRc must be I, err {err}");
        Ok(())
    }

    #[test]
    fn stays_orthonormal_for_arbitrary_parameters() -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let rot = Rotation::random(12, 3, &mut rng, &Device::Cpu)?;
        rot.a.set(&(Tensor::randn(0f32, 0.7, (12, 3), &Device::Cpu)?))?;
        let rc = rot.matrix(false)?;
        let gram = rc.t()?.matmul(&rc)?;
        let err = (gram - Tensor::eye(3, DType::F32, &Device::Cpu)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err < 1e-5, "err {err}");
        let moved = (rc - &rot.base)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(moved > 1e-2, "a nonzero A must move Rc");
        Ok(())
    }
}

#[cfg(test)]
mod grad_tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn householder_gradient_matches_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let rot = Rotation::random(10, 3, &mut rng, &dev)?;
        rot.a.set(&Tensor::randn(0f32, 0.3, (10, 3), &dev)?)?;
        let c = Tensor::randn(0f64, 1.0, (10, 3), &dev)?;
        let f = |rot: &Rotation| -> Result<f64> {
            (rot.matrix_in(false, DType::F64)? * &c)?.sum_all()?.to_scalar::<f64>()
        };
        let loss = (rot.matrix_in(true, DType::F64)? * &c)?.sum_all()?;
        let g: Vec<f32> = loss.backward()?.get(rot.a.as_tensor()).unwrap().flatten_all()?.to_vec1()?;
        let a0: Vec<f32> = rot.a.as_tensor().flatten_all()?.to_vec1()?;
        for k in [3usize, 10, 17, 29] {
            let mut p = a0.clone();
            p[k] += 1e-3;
            rot.a.set(&Tensor::from_vec(p.clone(), (10, 3), &dev)?)?;
            let lp = f(&rot)?;
            p[k] -= 2e-3;
            rot.a.set(&Tensor::from_vec(p.clone(), (10, 3), &dev)?)?;
            let lm = f(&rot)?;
            rot.a.set(&Tensor::from_vec(a0.clone(), (10, 3), &dev)?)?;
            let step = (a0[k] + 1e-3) as f64 - (a0[k] - 1e-3) as f64;
            let fd = (lp - lm) / step;
            assert!((fd - g[k] as f64).abs() < 1e-4 * (1.0 + fd.abs()), "a[{k}]: fd {fd} vs {}", g[k]);
        }
        Ok(())
    }
}
