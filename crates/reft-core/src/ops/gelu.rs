//! Exact GELU, `x · Φ(x) = ½x(1 + erf(x/√2))`, as BERT's `hidden_act = "gelu"`.
//!
//! On the CPU (f32/f64) one fused op computes it in a single parallel pass, and its backward
//! `g · (Φ(x) + x·φ(x))` in another (f32 on the vectorised loops of `vec_math`, whose `Φ`
//! keeps both tails accurate; f64 with candle's `erf`): the composite below walks the
//! `[b, t, 4d]` MLP activation five times and dominated encoder steps. Elsewhere the lean path
//! of `attach.rs` with the same backward (candle's fused `gelu_erf` has a backward, but it
//! hard-codes 1/√(2π) to six digits, which the f64 finite-difference checks would notice).

use super::attach::{attach1, widen};
use super::vec_math;
use candle_core::cpu::erf::erf_f64;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

const CHUNK: usize = 4096;

fn cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
}

/// `f(x)` elementwise in parallel chunks, for f32 or f64 data.
fn map<T: Copy + Send + Sync + Default>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, i)| {
        for (o, &v) in o.iter_mut().zip(i) {
            *o = f(v);
        }
    });
    out
}

/// `f(x, y)` on parallel chunks of f32 data (the vectorised loops of `vec_math`).
fn map_chunks(x: &[f32], f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, i)| f(i, o));
    out
}

fn grad(x: f64, g: f64) -> f64 {
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    g * (cdf(x) + x * pdf)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("gelu needs a contiguous input".into()))?;
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(map_chunks(&v[a..b], vec_math::gelu)),
            CpuStorage::F64(v) => CpuStorage::F64(map(&v[a..b], |x| x * cdf(x))),
            _ => candle_core::bail!("gelu: f32 or f64 expected"),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let (x, g) = (arg.contiguous()?, g.contiguous()?);
        let (xs, xl) = x.storage_and_layout();
        let (gs, gl) = g.storage_and_layout();
        let (Some((xa, xb)), Some((ga, gb))) = (xl.contiguous_offsets(), gl.contiguous_offsets()) else {
            candle_core::bail!("gelu backward: non-contiguous tensors");
        };
        let dx = match (&*xs, &*gs) {
            (Storage::Cpu(CpuStorage::F32(x)), Storage::Cpu(CpuStorage::F32(g))) => {
                let (x, g) = (&x[xa..xb], &g[ga..gb]);
                let mut v = vec![0f32; x.len()];
                v.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK))).for_each(|(d, (x, g))| vec_math::gelu_backward(x, g, d));
                Tensor::from_vec(v, arg.shape(), arg.device())?
            }
            (Storage::Cpu(CpuStorage::F64(x)), Storage::Cpu(CpuStorage::F64(g))) => {
                let (x, g) = (&x[xa..xb], &g[ga..gb]);
                let v: Vec<f64> = (0..x.len()).into_par_iter().map(|i| grad(x[i], g[i])).collect();
                Tensor::from_vec(v, arg.shape(), arg.device())?
            }
            _ => candle_core::bail!("gelu backward: CPU f32/f64 tensors expected"),
        };
        Ok(Some(dx))
    }
}

/// GELU with the exact error function.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    if xs.device().is_cpu() && matches!(xs.dtype(), DType::F32 | DType::F64) {
        return xs.contiguous()?.apply_op1(Gelu);
    }
    gelu_lean(xs)
}

/// `(Φ(x), x·φ(x))`: the normal CDF and `x` times the normal density, in f32 for half precision.
fn cdf_and_density(xs: &Tensor) -> Result<(Tensor, Tensor)> {
    let x = widen(xs)?;
    let cdf = (((&x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5)?;
    let pdf = ((x.sqr()? * -0.5)?.exp()? * (1.0 / (2.0 * std::f64::consts::PI).sqrt()))?;
    Ok((cdf, (x * pdf)?))
}

/// GELU off the native kernel (CUDA, half precision): the forward outside the graph, the
/// backward `g·(Φ(x) + x·φ(x))` (see `attach.rs`).
#[doc(hidden)]
pub fn gelu_lean(xs: &Tensor) -> Result<Tensor> {
    let x = xs.detach();
    let (cdf, _) = cdf_and_density(&x)?;
    let y = (cdf.to_dtype(xs.dtype())? * &x)?;
    attach1("gelu", xs, y, |xs, _y, g| {
        let (cdf, xpdf) = cdf_and_density(xs)?;
        let d = (cdf + xpdf)?;
        Ok(Some(g.to_dtype(d.dtype())?.mul(&d)?.to_dtype(xs.dtype())?))
    })
}
