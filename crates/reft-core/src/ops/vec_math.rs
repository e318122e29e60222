//! f32 row loops for the fused CPU kernels, written so that the compiler vectorises them:
//! `eˣ`, SiLU and its gradient, softmax rows and their backward.
//!
//! The kernels used to widen every f32 to f64 and call libm's scalar `exp`/`expf` per element,
//! which no compiler vectorises; in an all-layer SmolLM2 step those calls (and `expf`'s slow
//! path for masked scores, `xflowf`) were about 7% of the samples. Here `exp` is branch-free
//! (Cephes' polynomial, within 2 ulp of the rounded true value for arguments above −87.3, 0 below
//! it, like PyTorch's f32 kernels for masked scores), sums run on 16 fixed accumulators, and each
//! loop is compiled three times (AVX-512, AVX2, baseline) and picked at run time. No loop lets
//! the compiler fuse a multiply-add, and the reduction order is the same on every path, so the
//! three builds give bit-identical results: a model trains the same on every x86 machine.

/// `ln 2` split in two (Cephes' `C1`, `C2`) so that `x − n·ln 2` stays exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding it rounds a float of magnitude below 2²² to an integer held in its low
/// mantissa bits.
const ROUND: f32 = 12_582_912.0;
/// Below this `eˣ` is not a normal f32; the result is 0.
const MIN_ARG: f32 = -87.336_54;
/// Above this `eˣ` overflows to infinity.
const MAX_ARG: f32 = 88.722_83;

/// `eˣ` in f32, branch-free. NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // The clamp keeps n within [−126, 128]; the selects below restore the two ends.
    let xc = x.clamp(MIN_ARG, MAX_ARG);
    let t = xc * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let poly = p * (r * r) + r + 1.0;
    // n is exact in t's low mantissa bits. 2ⁿ is applied as two normal powers of two, since
    // 2¹²⁸ itself is not a float (the product stays finite up to MAX_ARG).
    let n_int = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let half = n_int >> 1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) << 23) as u32);
    let y = poly * pow2(half) * pow2(n_int - half);
    let y = if x < MIN_ARG { 0.0 } else { y };
    if x > MAX_ARG {
        f32::INFINITY
    } else {
        y
    }
}

/// The logistic function `1 / (1 + e⁻ˣ)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The standard normal CDF `Φ(x) = ½ erfc(−x/√2)`, from Numerical Recipes' `erfcc`
/// (Chebyshev fit of `erfc` with a fractional error below 1.2·10⁻⁷ everywhere), so that both
/// tails keep their relative accuracy: GELU's `x·Φ(x)` for negative `x` is a tail value.
#[inline(always)]
fn normal_cdf(x: f32) -> f32 {
    let u = -x * std::f32::consts::FRAC_1_SQRT_2;
    let z = u.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    for c in [-0.822_152_23, 1.488_515_9, -1.135_204, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7] {
        p = p * t + c;
    }
    let erfc_z = t * exp(-z * z - 1.265_512_2 + t * p);
    // erfc(u) = 2 − erfc(−u): Φ = ½erfc(u) for u ≥ 0, else 1 − ½erfc(|u|).
    if u >= 0.0 {
        0.5 * erfc_z
    } else {
        1.0 - 0.5 * erfc_z
    }
}

/// `1/√(2π)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

const LANES: usize = 16;

/// `Σ xᵢ` on 16 accumulators (a fixed order on every instruction set).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    for (i, v) in chunks.remainder().iter().enumerate() {
        acc[i] += v;
    }
    acc.iter().sum()
}

/// `Σ aᵢbᵢ` on 16 accumulators.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[i] += x * y;
    }
    acc.iter().sum()
}

/// `max xᵢ` (NaN-ignoring, like `f32::max`).
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    for (i, v) in chunks.remainder().iter().enumerate() {
        acc[i] = acc[i].max(*v);
    }
    acc.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v))
}

/// Defines `pub(crate) fn $name` that runs `$body` compiled for AVX-512, AVX2 or the baseline,
/// whichever the CPU has.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(test)]
            if BASELINE_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
                return body($($arg),*);
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2")]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the feature the function was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Tests set this to run the baseline build of every loop, to compare it with the vectorised
/// ones.
#[cfg(test)]
static BASELINE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

multiversion! {
    /// `yᵢ = silu(gateᵢ)·upᵢ`.
    fn silu_mul(gate: &[f32], up: &[f32], y: &mut [f32]) {
        for ((y, &a), &u) in y.iter_mut().zip(gate).zip(up) {
            *y = a * sigmoid(a) * u;
        }
    }
}

multiversion! {
    /// The gradients of `silu(gate)·up` for the output gradient `g`:
    /// `d_gate = g·up·σ(1 + gate(1 − σ))`, `d_up = g·silu(gate)`.
    fn silu_mul_backward(gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
        for i in 0..gate.len().min(up.len()).min(g.len()).min(d_gate.len()).min(d_up.len()) {
            let (a, s) = (gate[i], sigmoid(gate[i]));
            d_gate[i] = g[i] * up[i] * (s * (1.0 + a * (1.0 - s)));
            d_up[i] = g[i] * (a * s);
        }
    }
}

multiversion! {
    /// One attention row: `pⱼ = softmax(scale·sⱼ + mⱼ)` into `p`. A row whose entries are all
    /// masked to −∞ comes out NaN, as in PyTorch.
    fn masked_softmax(s: &[f32], m: &[f32], scale: f32, p: &mut [f32]) {
        for ((p, &s), &m) in p.iter_mut().zip(s).zip(m) {
            *p = s * scale + m;
        }
        let top = max(p);
        for v in p.iter_mut() {
            *v = exp(*v - top);
        }
        let inv = 1.0 / sum(p);
        for v in p.iter_mut() {
            *v *= inv;
        }
    }
}

multiversion! {
    /// A softmax row in place; returns its log-sum-exp.
    fn softmax_in_place(x: &mut [f32]) -> f32 {
        let top = max(x);
        for v in x.iter_mut() {
            *v = exp(*v - top);
        }
        let total = sum(x);
        let inv = 1.0 / total;
        for v in x.iter_mut() {
            *v *= inv;
        }
        total.ln() + top
    }
}

multiversion! {
    /// The input gradient of `softmax(scale·s + m)` from its output `p` and the output's
    /// gradient `g`: `dsⱼ = scale·pⱼ(gⱼ − Σₖ gₖpₖ)`.
    fn softmax_backward(p: &[f32], g: &[f32], scale: f32, ds: &mut [f32]) {
        let d = dot(p, g);
        for ((o, &p), &g) in ds.iter_mut().zip(p).zip(g) {
            *o = scale * p * (g - d);
        }
    }
}

multiversion! {
    /// `xⱼ ← g·e^(xⱼ − shift)`: a softmax row scaled by `g`, from logits and their log-sum-exp
    /// (`shift`), or with `shift = None` only the scaling of kept probabilities.
    fn exp_scale(x: &mut [f32], shift: Option<f32>, g: f32) {
        match shift {
            Some(lse) => {
                for v in x.iter_mut() {
                    *v = g * exp(*v - lse);
                }
            }
            None => {
                for v in x.iter_mut() {
                    *v *= g;
                }
            }
        }
    }
}

multiversion! {
    /// Exact GELU `yᵢ = xᵢ·Φ(xᵢ)`.
    fn gelu(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x * normal_cdf(x);
        }
    }
}

multiversion! {
    /// GELU's input gradient `dxᵢ = gᵢ·(Φ(xᵢ) + xᵢ·φ(xᵢ))`.
    fn gelu_backward(x: &[f32], g: &[f32], dx: &mut [f32]) {
        for ((d, &x), &g) in dx.iter_mut().zip(x).zip(g) {
            let density = exp(-0.5 * x * x) * INV_SQRT_2PI;
            *d = g * (normal_cdf(x) + x * density);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_rounded_truth() {
        let mut worst = 0;
        let mut x = -87.3f32;
        while x < 88.7 {
            let truth = (x as f64).exp() as f32;
            let d = ulps(exp(x), truth);
            assert!(d <= 2, "exp({x}) = {} vs {truth}: {d} ulp", exp(x));
            worst = worst.max(d);
            x += 0.0137;
        }
        assert!(worst >= 1, "the sweep should meet rounding differences");
    }

    #[test]
    fn exp_ends_and_nan() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-87.4), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(exp(88.8), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        // Near the clamp at 88.3 the value is still right.
        let t = (88.5f64).exp() as f32;
        assert!(ulps(exp(88.5), t) <= 2, "{} vs {t}", exp(88.5));
    }

    #[test]
    fn gelu_matches_f64_in_both_tails() {
        let erf = |x: f64| candle_core::cpu::erf::erf_f64(x);
        let (mut worst_rel, mut worst_abs) = (0f64, 0f64);
        let xs: Vec<f32> = (0..4001).map(|i| -10.0 + i as f32 * 0.005).collect();
        let mut y = vec![0f32; xs.len()];
        let mut dx = vec![0f32; xs.len()];
        gelu(&xs, &mut y);
        gelu_backward(&xs, &vec![1.0; xs.len()], &mut dx);
        for (i, &x) in xs.iter().enumerate() {
            let x64 = x as f64;
            // Φ from erfc in the lower tail, where 1 + erf(x/√2) cancels.
            let cdf = if x64 < 0.0 { 0.5 * libm_erfc(-x64 / std::f64::consts::SQRT_2) } else { 0.5 * (1.0 + erf(x64 / std::f64::consts::SQRT_2)) };
            let want = x64 * cdf;
            let dwant = cdf + x64 * (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
            if want.abs() > 1e-30 {
                worst_rel = worst_rel.max((y[i] as f64 - want).abs() / want.abs());
            }
            worst_abs = worst_abs.max((y[i] as f64 - want).abs()).max((dx[i] as f64 - dwant).abs());
        }
        // Measured: 8.6e-6 (the far lower tail, where x² rounds in f32) and 3.7e-7 (an ulp of
        // GELU's value near x = 3).
        assert!(worst_rel < 1.5e-5, "GELU relative error {worst_rel}");
        assert!(worst_abs < 6e-7, "GELU absolute error {worst_abs}");
    }

    /// `erfc` in f64 without cancellation (continued fraction for large arguments).
    fn libm_erfc(z: f64) -> f64 {
        if z < 2.0 {
            return 1.0 - candle_core::cpu::erf::erf_f64(z);
        }
        // Lentz's continued fraction: erfc(z) = e^{-z²}/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + …)))).
        let mut f = z;
        for k in (1..200).rev() {
            f = z + (k as f64 / 2.0) / f;
        }
        (-z * z).exp() / std::f64::consts::PI.sqrt() / f
    }

    #[test]
    fn rows_match_f64_references() {
        let n = 100; // not a multiple of the 16 lanes
        let s: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let m: Vec<f32> = (0..n).map(|i| if i % 9 == 4 { f32::MIN } else { 0.0 }).collect();
        let mut p = vec![0f32; n];
        masked_softmax(&s, &m, 0.5, &mut p);
        let z: Vec<f64> = s.iter().zip(&m).map(|(&s, &m)| if m < -1e30 { f64::NEG_INFINITY } else { 0.5 * s as f64 }).collect();
        let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = z.iter().map(|v| (v - top).exp()).sum();
        for j in 0..n {
            let want = (z[j] - top).exp() / total;
            assert!((p[j] as f64 - want).abs() <= 1e-6 * want.max(1e-30) + 1e-12, "p[{j}] = {} vs {want}", p[j]);
        }
        let mut x = s.clone();
        let lse = softmax_in_place(&mut x);
        let top = s.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);
        let want = s.iter().map(|&v| (v as f64 - top).exp()).sum::<f64>().ln() + top;
        assert!((lse as f64 - want).abs() < 1e-5, "lse {lse} vs {want}");
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).sin()).collect();
        let mut ds = vec![0f32; n];
        softmax_backward(&p, &g, 0.5, &mut ds);
        let d: f64 = p.iter().zip(&g).map(|(&a, &b)| a as f64 * b as f64).sum();
        for j in 0..n {
            let want = 0.5 * p[j] as f64 * (g[j] as f64 - d);
            assert!((ds[j] as f64 - want).abs() < 1e-6, "ds[{j}]");
        }
        let (mut y, mut dg, mut du) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        silu_mul(&s, &g, &mut y);
        silu_mul_backward(&s, &g, &g, &mut dg, &mut du);
        // The baseline build gives the same bits as the vectorised one this CPU ran above.
        BASELINE_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut p0, mut x0, mut ds0) = (vec![0f32; n], s.clone(), vec![0f32; n]);
        let (mut y0, mut dg0, mut du0) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        masked_softmax(&s, &m, 0.5, &mut p0);
        let lse0 = softmax_in_place(&mut x0);
        softmax_backward(&p, &g, 0.5, &mut ds0);
        silu_mul(&s, &g, &mut y0);
        silu_mul_backward(&s, &g, &g, &mut dg0, &mut du0);
        BASELINE_ONLY.store(false, std::sync::atomic::Ordering::Relaxed);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(lse0.to_bits(), lse.to_bits());
        for (a, b) in [(&p0, &p), (&x0, &x), (&ds0, &ds), (&y0, &y), (&dg0, &dg), (&du0, &du)] {
            assert_eq!(bits(a), bits(b));
        }
        for j in 0..n {
            let (a, u) = (s[j] as f64, g[j] as f64);
            let sg = 1.0 / (1.0 + (-a).exp());
            assert!((y[j] as f64 - a * sg * u).abs() < 1e-5, "silu[{j}]");
            assert!((dg[j] as f64 - u * u * sg * (1.0 + a * (1.0 - sg))).abs() < 1e-5, "d_gate[{j}]");
            assert!((du[j] as f64 - u * a * sg).abs() < 1e-5, "d_up[{j}]");
        }
    }
}
