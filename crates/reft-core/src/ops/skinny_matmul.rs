//! `x·Wᵀ` for a few rows of `x` on the CPU, the product of every batched decoding step (one row
//! per sequence), for weights stored `[out, in]`. gemm reads such a weight as a transposed view
//! and repacks it on every call: at 2–8 rows that made a projection 3–6× slower than one row
//! (`cargo test --release -p reft-core --lib skinny_vs_gemm -- --ignored --nocapture`). Here
//! each weight row is read once and dotted with every input row, in register tiles of 4 input
//! rows × 2 weight rows with AVX2 and FMA when the CPU has them (checked at run time), plain
//! loops otherwise (and on wasm32). One row stays with gemm, whose matrix-vector path is as
//! fast, and so do input-major weights (`frozen_linear.rs`), which gemm reads without repacking.

use rayon::prelude::*;

/// The row counts for which the skinny product beats gemm on a row-major weight.
pub(crate) const ROWS: std::ops::RangeInclusive<usize> = 2..=8;

/// Output columns per task.
const COLS: usize = 64;

/// `y = x·Wᵀ` for `x` `[m, k]` and `W` `[n, k]`, both row-major.
pub(crate) fn skinny_matmul(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    debug_assert!(x.len() == m * k && w.len() == n * k);
    // Each task fills a block of COLS output columns for all m rows, stored column block by
    // column block ([n/COLS][m][COLS]); the blocks are then laid out as [m, n].
    let blocks: Vec<Vec<f32>> = (0..n.div_ceil(COLS))
        .into_par_iter()
        .map(|c| {
            let (j0, j1) = (c * COLS, ((c + 1) * COLS).min(n));
            let mut acc = vec![0f32; m * (j1 - j0)];
            block(x, m, k, w, j0, j1, &mut acc);
            acc
        })
        .collect();
    let mut y = vec![0f32; m * n];
    for (c, b) in blocks.iter().enumerate() {
        let (j0, width) = (c * COLS, b.len() / m.max(1));
        for i in 0..m {
            y[i * n + j0..i * n + j0 + width].copy_from_slice(&b[i * width..(i + 1) * width]);
        }
    }
    y
}

fn block(x: &[f32], m: usize, k: usize, w: &[f32], j0: usize, j1: usize, acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features enabled on the function; the slices hold
        // `m × k` inputs and `n × k` weights (checked by the caller).
        unsafe { avx2::block(x, m, k, w, j0, j1, acc) };
        return;
    }
    block_generic(x, m, k, w, j0, j1, acc)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `acc[i][j − j0] = x[i]·W[j]` for rows `j0..j1` of a row-major `W`, in register tiles of
    /// up to 4 input rows × 2 weight rows (8 accumulators, 6 loads per 8 FMAs).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block(x: &[f32], m: usize, k: usize, w: &[f32], j0: usize, j1: usize, acc: &mut [f32]) {
        let width = j1 - j0;
        let mut j = j0;
        while j < j1 {
            let c = (j1 - j).min(2);
            let mut i = 0;
            while i < m {
                let r = (m - i).min(4);
                let (xp, wp) = (x.as_ptr().add(i * k), w.as_ptr().add(j * k));
                let mut out = [[0f32; 2]; 4];
                match (r, c) {
                    (4, 2) => tile::<4, 2>(xp, k, wp, &mut out),
                    (3, 2) => tile::<3, 2>(xp, k, wp, &mut out),
                    (2, 2) => tile::<2, 2>(xp, k, wp, &mut out),
                    (1, 2) => tile::<1, 2>(xp, k, wp, &mut out),
                    (4, _) => tile::<4, 1>(xp, k, wp, &mut out),
                    (3, _) => tile::<3, 1>(xp, k, wp, &mut out),
                    (2, _) => tile::<2, 1>(xp, k, wp, &mut out),
                    _ => tile::<1, 1>(xp, k, wp, &mut out),
                }
                for (rr, row) in out.iter().enumerate().take(r) {
                    for (cc, v) in row.iter().enumerate().take(c) {
                        acc[(i + rr) * width + (j - j0) + cc] = *v;
                    }
                }
                i += r;
            }
            j += c;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize, const C: usize>(x: *const f32, k: usize, w: *const f32, out: &mut [[f32; 2]; 4]) {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let mut kk = 0;
        while kk + 8 <= k {
            let mut wv = [_mm256_setzero_ps(); C];
            for (c, v) in wv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(w.add(c * k + kk));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm256_loadu_ps(x.add(r * k + kk));
                for c in 0..C {
                    a[c] = _mm256_fmadd_ps(xv, wv[c], a[c]);
                }
            }
            kk += 8;
        }
        for r in 0..R {
            for c in 0..C {
                let mut s = hsum(acc[r][c]);
                for t in kk..k {
                    s = (*x.add(r * k + t)).mul_add(*w.add(c * k + t), s);
                }
                out[r][c] = s;
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_hadd_ps(s, s);
        _mm_cvtss_f32(_mm_hadd_ps(s, s))
    }
}

fn block_generic(x: &[f32], m: usize, k: usize, w: &[f32], j0: usize, j1: usize, acc: &mut [f32]) {
    let width = j1 - j0;
    for j in j0..j1 {
        let wr = &w[j * k..(j + 1) * k];
        for i in 0..m {
            acc[i * width + (j - j0)] = dot(&x[i * k..(i + 1) * k], wr);
        }
    }
}

/// A dot product with 16 independent accumulators (vectorised, and no serial dependence).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = lanes.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k).map(|kk| x[i * k + kk] as f64 * w[j * k + kk] as f64).sum::<f64>() as f32;
            }
        }
        y
    }

    #[test]
    fn matches_a_plain_product_in_both_layouts() {
        let mut s = 7u64;
        let mut rnd = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for (m, k, n) in [(1, 576, 1536), (8, 576, 200), (3, 37, 130), (7, 1536, 576), (5, 16, 64), (2, 8, 1)] {
            let x: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
            let want = reference(&x, m, k, &w, n);
            let got = skinny_matmul(&x, m, k, &w, n);
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-5 * (k as f32).sqrt(), "{m}x{k}x{n}: max error {err}");
            // The portable path (non-x86, or no AVX2) gives the same products.
            let mut acc = vec![0f32; m * n];
            block_generic(&x, m, k, &w, 0, n, &mut acc);
            let err = acc.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-5 * (k as f32).sqrt(), "portable {m}x{k}x{n}: max error {err}");
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    #[ignore]
    fn skinny_vs_gemm() {
        for (m, k, n) in [(1, 576, 1536), (2, 576, 1536), (4, 576, 1536), (8, 576, 1536), (16, 576, 1536), (8, 1536, 576), (1, 576, 49152), (8, 576, 49152)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let wv: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
            let wt = w.t().unwrap().contiguous().unwrap();
            let time = |f: &dyn Fn()| {
                f();
                let t0 = std::time::Instant::now();
                for _ in 0..20 {
                    f();
                }
                t0.elapsed().as_secs_f64() / 20.0 * 1e3
            };
            let g = time(&|| {
                x.matmul(&w.t().unwrap()).unwrap();
            });
            let gt = time(&|| {
                x.matmul(&wt).unwrap();
            });
            let s = time(&|| {
                skinny_matmul(&xv, m, k, &wv, n);
            });
            println!("{m}x{k}x{n}: gemm on Wᵀ (view) {g:.3} ms, gemm on a [k, n] copy {gt:.3} ms, skinny {s:.3} ms");
        }
    }
}
