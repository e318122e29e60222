//! The fused CUDA kernels (`crates/reft-kernels/kernels/fused.cu`), run on the host by their
//! emulation with the GPU's launch geometry, against the ops the CPU runs: values against the
//! lean ops' forward, input gradients against candle's backward through them, in f32, bf16 and
//! f16. Shapes are chosen so that rows are longer than a warp and their count is not a multiple
//! of the warps per block, masks come both per key and per query, and the elementwise kernels
//! also run with too few blocks (their grid-stride loop).

use candle_core::{DType, Device, Tensor, Var, WithDType};
use reft_core::ops::{apply_rope_lean, attention_softmax_lean, rms_norm_lean, swiglu_lean, RopeTables};
use reft_kernels::emu::{self, Elem};

fn host<T: WithDType>(t: &Tensor) -> Vec<T> {
    t.flatten_all().unwrap().to_vec1::<T>().unwrap()
}

fn tensor<T: WithDType>(v: Vec<T>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Largest difference relative to the largest magnitude of `want`.
fn rel(got: &Tensor, want: &Tensor) -> f64 {
    let (g, w) = (got.to_dtype(DType::F64).unwrap(), want.to_dtype(DType::F64).unwrap());
    let d = (&g - &w).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    d / w.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-30)
}

/// Output and input gradients of `f` at `xs` (in `dtype`) under the cotangent `c`.
fn reference(xs: &[&Tensor], dtype: DType, c: &Tensor, f: &dyn Fn(&[Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = xs.iter().map(|x| Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap()).collect();
    let y = f(&vars.iter().map(|v| v.as_tensor().clone()).collect::<Vec<_>>());
    let grads = (y.to_dtype(DType::F32).unwrap() * c).unwrap().sum_all().unwrap().backward().unwrap();
    (y, vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect())
}

fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 2e-6,
        DType::BF16 => 1.6e-2, // two ulps of bf16 at the row's largest magnitude
        _ => 2e-3,
    }
}

fn check<T: WithDType + Elem>(dtype: DType) {
    let dev = Device::Cpu;
    let t = tol(dtype);

    // Attention softmax: [b, h, q, k] = [2, 3, 5, 40], 30 rows over 4-warp blocks.
    let dims = [2usize, 3, 5, 40];
    let scores = Tensor::randn(0f32, 2.0, &dims, &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, &dims, &dev).unwrap();
    let pad: Vec<f32> = (0..2 * 40).map(|i| if i % 40 < 3 * (i / 40) + 1 { -1e30 } else { 0.0 }).collect();
    let causal: Vec<f32> = (0..2 * 5 * 40).map(|i| if i % 40 > (i / 40) % 5 + 30 { -1e30 } else { 0.0 }).collect();
    for (name, mask, mrows) in [("pad", pad, 1usize), ("causal", causal, 5)] {
        let m = tensor(mask.clone(), &[2, 1, mrows, 40]);
        let (want, grads) = reference(&[&scores], dtype, &c, &|x| attention_softmax_lean(&x[0], &m.to_dtype(dtype).unwrap(), 0.3).unwrap());
        let s = host::<T>(&scores.to_dtype(dtype).unwrap());
        let p = emu::attn_softmax_fwd(&s, &mask, dims, mrows, 0.3);
        let got = tensor(p.clone(), &dims);
        assert!(rel(&got, &want) < t, "attn softmax fwd {name} {dtype:?}: {}", rel(&got, &want));
        // The backward reads the probabilities the forward stored.
        let g = host::<T>(&c.to_dtype(dtype).unwrap());
        let ds = tensor(emu::attn_softmax_bwd(&host::<T>(&want), &g, 40, 0.3), &dims);
        assert!(rel(&ds, &grads[0]) < t, "attn softmax bwd {name} {dtype:?}: {}", rel(&ds, &grads[0]));
    }
    // Decoding: one query row against the cached keys.
    let one = Tensor::randn(0f32, 2.0, (2, 3, 1, 40), &dev).unwrap();
    let mask: Vec<f32> = (0..80).map(|i| if i % 40 == 7 { -1e30 } else { 0.0 }).collect();
    let m = tensor(mask.clone(), &[2, 1, 1, 40]).to_dtype(dtype).unwrap();
    let want = attention_softmax_lean(&one.to_dtype(dtype).unwrap(), &m, 0.125).unwrap();
    let got = tensor(emu::attn_softmax_fwd(&host::<T>(&one.to_dtype(dtype).unwrap()), &mask, [2, 3, 1, 40], 1, 0.125), &[2, 3, 1, 40]);
    assert!(rel(&got, &want) < t, "attn softmax decode {dtype:?}");

    // RMSNorm: 30 rows of 72.
    let x = Tensor::randn(0f32, 1.5, (2, 3, 5, 72), &dev).unwrap();
    let w = Tensor::randn(1f32, 0.3, 72, &dev).unwrap().to_dtype(dtype).unwrap();
    let c = Tensor::randn(0f32, 1.0, (2, 3, 5, 72), &dev).unwrap();
    let (want, grads) = reference(&[&x], dtype, &c, &|v| rms_norm_lean(&v[0], &w, 1e-5).unwrap());
    let (xh, wh) = (host::<T>(&x.to_dtype(dtype).unwrap()), host::<T>(&w));
    let got = tensor(emu::rmsnorm_fwd(&xh, &wh, 1e-5), x.dims());
    assert!(rel(&got, &want) < t, "rmsnorm fwd {dtype:?}: {}", rel(&got, &want));
    let dx = tensor(emu::rmsnorm_bwd(&xh, &wh, &host::<T>(&c.to_dtype(dtype).unwrap()), 1e-5), x.dims());
    assert!(rel(&dx, &grads[0]) < t, "rmsnorm bwd {dtype:?}: {}", rel(&dx, &grads[0]));

    // RoPE: [b, h, t, hd] = [2, 3, 5, 16], rows at different positions (left padding).
    let inv: Vec<f64> = (0..8).map(|i| 1.0 / 10_000f64.powf(2.0 * i as f64 / 16.0)).collect();
    let tables = RopeTables::new(&inv, &[(0..5).collect(), (3..8).collect()], dtype, &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 5, 16), &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, (2, 3, 5, 16), &dev).unwrap();
    let (want, grads) = reference(&[&x], dtype, &c, &|v| apply_rope_lean(&v[0], &tables).unwrap());
    let (cos, sin) = (host::<T>(&tables.cos), host::<T>(&tables.sin));
    let xh = host::<T>(&x.to_dtype(dtype).unwrap());
    let g = host::<T>(&c.to_dtype(dtype).unwrap());
    for grid in [None, Some(1)] {
        let got = tensor(emu::rope(&xh, &cos, &sin, [2, 3, 5, 16], false, grid), x.dims());
        assert!(rel(&got, &want) < t, "rope fwd {dtype:?} grid {grid:?}: {}", rel(&got, &want));
        let dx = tensor(emu::rope(&g, &cos, &sin, [2, 3, 5, 16], true, grid), x.dims());
        assert!(rel(&dx, &grads[0]) < t, "rope bwd {dtype:?} grid {grid:?}: {}", rel(&dx, &grads[0]));
    }

    // SwiGLU over 600 elements (three blocks, or one block striding).
    let a = Tensor::randn(0f32, 2.0, (4, 150), &dev).unwrap();
    let u = Tensor::randn(0f32, 1.0, (4, 150), &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, (4, 150), &dev).unwrap();
    let (want, grads) = reference(&[&a, &u], dtype, &c, &|v| swiglu_lean(&v[0], &v[1]).unwrap());
    let (ah, uh) = (host::<T>(&a.to_dtype(dtype).unwrap()), host::<T>(&u.to_dtype(dtype).unwrap()));
    let g = host::<T>(&c.to_dtype(dtype).unwrap());
    for grid in [None, Some(1)] {
        let got = tensor(emu::swiglu_fwd(&ah, &uh, grid), a.dims());
        assert!(rel(&got, &want) < t, "swiglu fwd {dtype:?}: {}", rel(&got, &want));
        let (da, du) = emu::swiglu_bwd(&ah, &uh, &g, grid);
        assert!(rel(&tensor(da, a.dims()), &grads[0]) < t, "swiglu d_gate {dtype:?}");
        assert!(rel(&tensor(du, a.dims()), &grads[1]) < t, "swiglu d_up {dtype:?}");
    }
}

#[test]
fn fused_kernels_match_the_cpu_ops_f32() {
    check::<f32>(DType::F32);
}

#[test]
fn fused_kernels_match_the_cpu_ops_bf16() {
    check::<half::bf16>(DType::BF16);
}

#[test]
fn fused_kernels_match_the_cpu_ops_f16() {
    check::<half::f16>(DType::F16);
}


/// AdamW in place: the kernel against the op-by-op update, to the bit, over three steps with
/// clipping and decay, with the launch's grid and with one block (the grid-stride loop).
#[test]
fn fused_adamw_matches_the_op_by_op_update() {
    use reft_core::adamw::{adamw_update_ops, AdamwScalars};
    let dev = Device::Cpu;
    let n = 1000 + 37;
    let p0 = Tensor::randn(0f32, 0.5, n, &dev).unwrap();
    for grid in [None, Some(1)] {
        let var = Var::from_tensor(&p0).unwrap();
        let (mut m, mut v) = (Tensor::zeros(n, DType::F32, &dev).unwrap(), Tensor::zeros(n, DType::F32, &dev).unwrap());
        let (mut ph, mut mh, mut vh) = (host::<f32>(&p0), vec![0f32; n], vec![0f32; n]);
        for t in 1..=3 {
            let g = Tensor::randn(0f32, 1e-2, n, &dev).unwrap();
            let (gscale, decay) = if t == 2 { (0.37, 0.0) } else { (1.0, 2e-3 * 0.01) };
            let s = AdamwScalars::new(t, 2e-3, 0.9, 0.999, 1e-8, decay, gscale);
            (m, v) = adamw_update_ops(&var, &g, &m, &v, &s).unwrap();
            emu::adamw(&mut ph, &host::<f32>(&g), &mut mh, &mut vh, &s.as_array(), grid);
            let same = |a: &[f32], b: &Tensor| a.iter().zip(host::<f32>(b)).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same(&ph, var.as_tensor()), "parameter differs at step {t} (grid {grid:?})");
            assert!(same(&mh, &m) && same(&vh, &v), "moments differ at step {t} (grid {grid:?})");
        }
        assert!(host::<f32>(var.as_tensor()) != host::<f32>(&p0), "the update must move the parameter");
    }
}

/// An intervention's edit `h[rows] += delta` against candle's `index_add`, in f32, bf16 and f16,
/// with rows in no order, a row length that is not a multiple of a warp, and one block.
#[test]
fn fused_rows_add_matches_index_add() {
    fn case<T: WithDType + Elem>(dtype: DType) {
        let dev = Device::Cpu;
        let (nh, d) = (37, 45);
        let rows: Vec<u32> = vec![30, 2, 17, 0, 36, 9, 21];
        let h = Tensor::randn(0f32, 1.0, (nh, d), &dev).unwrap().to_dtype(dtype).unwrap();
        let delta = Tensor::randn(0f32, 1.0, (rows.len(), d), &dev).unwrap().to_dtype(dtype).unwrap();
        let ids = Tensor::from_vec(rows.clone(), rows.len(), &dev).unwrap();
        let want = h.index_add(&ids, &delta, 0).unwrap();
        for grid in [None, Some(1)] {
            let got = tensor(emu::rows_add(&host::<T>(&h), &host::<T>(&delta), &rows, d, grid), &[nh, d]);
            assert_eq!(rel(&got, &want), 0.0, "rows add {dtype:?} (grid {grid:?})");
        }
    }
    case::<f32>(DType::F32);
    case::<half::bf16>(DType::BF16);
    case::<half::f16>(DType::F16);
}

/// RoPE reading the projections' row layout `[b, t, h, hd]` (the forward) or writing it (the
/// backward): the same values as the transposing copy around the plain kernel, to the bit.
#[test]
fn fused_rope_across_layouts_matches_the_transposed_rope() {
    fn case<T: WithDType + Elem>(dtype: DType) {
        let dev = Device::Cpu;
        let (b, h, t, hd) = (2, 3, 5, 8);
        let x = Tensor::randn(0f32, 1.0, (b, h, t, hd), &dev).unwrap().to_dtype(dtype).unwrap();
        let cos = Tensor::randn(0f32, 1.0, (b, 1, t, hd), &dev).unwrap().to_dtype(dtype).unwrap();
        let sin = Tensor::randn(0f32, 1.0, (b, 1, t, hd), &dev).unwrap().to_dtype(dtype).unwrap();
        let rows = x.transpose(1, 2).unwrap().contiguous().unwrap();
        let (xh, ch, sh) = (host::<T>(&x), host::<T>(&cos), host::<T>(&sin));
        for grid in [None, Some(1)] {
            let plain = tensor(emu::rope(&xh, &ch, &sh, [b, h, t, hd], false, grid), &[b, h, t, hd]);
            let from_rows = tensor(emu::rope_layout(&host::<T>(&rows), &ch, &sh, [b, h, t, hd], false, 1, grid), &[b, h, t, hd]);
            assert_eq!(rel(&from_rows, &plain), 0.0, "rope from rows {dtype:?}");
            let inverse = tensor(emu::rope(&xh, &ch, &sh, [b, h, t, hd], true, grid), &[b, h, t, hd]).transpose(1, 2).unwrap().contiguous().unwrap();
            let to_rows = tensor(emu::rope_layout(&xh, &ch, &sh, [b, h, t, hd], true, 2, grid), &[b, t, h, hd]);
            assert_eq!(rel(&to_rows, &inverse), 0.0, "rope backward to rows {dtype:?}");
        }
    }
    case::<f32>(DType::F32);
    case::<half::bf16>(DType::BF16);
    case::<half::f16>(DType::F16);
}

/// The gradient norm's sum of squares by one warp, against an f64 sum: longer and shorter than a
/// warp, into separate slots.
#[test]
fn fused_sum_of_squares_matches_an_f64_sum() {
    let lens = [1usize, 31, 32, 1000, 4099];
    let mut out = vec![0f32; lens.len()];
    for (slot, &n) in lens.iter().enumerate() {
        let x = host::<f32>(&Tensor::randn(0f32, 1e-2, n, &Device::Cpu).unwrap());
        emu::sum_squares(&x, &mut out, slot);
        let want: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
        assert!((out[slot] as f64 - want).abs() <= 1e-6 * want, "length {n}: {} vs {want}", out[slot]);
    }
}

/// The packed projections' kernels against the kernels they replace, to the bit: the q/k/v
/// split (`reft_qkv_rows`) against RoPE from the rows of each section plus the values'
/// transpose, its gradient against RoPE's backward to rows and the transpose back, and SwiGLU
/// over packed gate/up rows against the separate arrays, forward and backward.
#[test]
fn fused_packed_projections_match_the_separate_kernels() {
    fn case<T: WithDType + Elem>(dtype: DType) {
        let dev = Device::Cpu;
        let (b, t, nh, nkv, hd) = (2, 5, 4, 2, 8);
        let randn = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, &dev).unwrap().to_dtype(dtype).unwrap();
        let rows = randn(&[b, t, (nh + 2 * nkv) * hd]);
        let (cos, sin) = (randn(&[b, 1, t, hd]), randn(&[b, 1, t, hd]));
        let (ch, sh) = (host::<T>(&cos), host::<T>(&sin));
        let r4 = rows.reshape((b, t, nh + 2 * nkv, hd)).unwrap();
        let section = |at: usize, n: usize| host::<T>(&r4.narrow(2, at, n).unwrap().contiguous().unwrap());
        let (dq, dk, dv) = (randn(&[b, nh, t, hd]), randn(&[b, nkv, t, hd]), randn(&[b, nkv, t, hd]));
        for grid in [None, Some(1)] {
            let (q, k, v) = emu::qkv_heads(&host::<T>(&rows), &ch, &sh, b, t, [nh, nkv, hd], grid);
            let want_q = emu::rope_layout(&section(0, nh), &ch, &sh, [b, nh, t, hd], false, 1, grid);
            let want_k = emu::rope_layout(&section(nh, nkv), &ch, &sh, [b, nkv, t, hd], false, 1, grid);
            let want_v = r4.narrow(2, nh + nkv, nkv).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
            assert_eq!(rel(&tensor(q, &[b, nh, t, hd]), &tensor(want_q.clone(), &[b, nh, t, hd])), 0.0, "packed q {dtype:?}");
            assert_eq!(rel(&tensor(k, &[b, nkv, t, hd]), &tensor(want_k.clone(), &[b, nkv, t, hd])), 0.0, "packed k {dtype:?}");
            assert_eq!(rel(&tensor(v, &[b, nkv, t, hd]), &want_v), 0.0, "packed v {dtype:?}");
            // Into a reserved cache of 9 positions from position 3 on: the same queries, the
            // keys and values at 3..8, every other position as it was.
            let (kcap, koff) = (9, 3);
            let sentinel = randn(&[b, nkv, kcap, hd]);
            let (mut kc, mut vc) = (host::<T>(&sentinel), host::<T>(&sentinel));
            let q2 = emu::qkv_heads_into_cache(&host::<T>(&rows), &ch, &sh, b, t, [nh, nkv, hd], &mut kc, &mut vc, kcap, koff, grid);
            assert_eq!(rel(&tensor(q2, &[b, nh, t, hd]), &tensor(want_q.clone(), &[b, nh, t, hd])), 0.0, "queries with a cache {dtype:?}");
            let placed = |new: Tensor| Tensor::cat(&[sentinel.narrow(2, 0, koff).unwrap(), new, sentinel.narrow(2, koff + t, kcap - koff - t).unwrap()], 2).unwrap();
            let want_kc = placed(tensor(want_k.clone(), &[b, nkv, t, hd]));
            assert_eq!(rel(&tensor(kc, &[b, nkv, kcap, hd]), &want_kc), 0.0, "keys into the cache {dtype:?}");
            assert_eq!(rel(&tensor(vc, &[b, nkv, kcap, hd]), &placed(want_v.clone())), 0.0, "values into the cache {dtype:?}");

            let got = tensor(emu::qkv_rows_grad(&host::<T>(&dq), &host::<T>(&dk), &host::<T>(&dv), &ch, &sh, b, t, [nh, nkv, hd], grid), &[b, t, (nh + 2 * nkv) * hd]);
            let back = |d: &Tensor, n: usize| tensor(emu::rope_layout(&host::<T>(d), &ch, &sh, [b, n, t, hd], true, 2, grid), &[b, t, n * hd]);
            let dv_rows = dv.transpose(1, 2).unwrap().contiguous().unwrap().reshape((b, t, nkv * hd)).unwrap();
            let want = Tensor::cat(&[back(&dq, nh), back(&dk, nkv), dv_rows], 2).unwrap();
            assert_eq!(rel(&got, &want), 0.0, "packed q/k/v gradient {dtype:?}");

            let f = 40;
            let au = randn(&[6, 2 * f]);
            let (a, u) = (au.narrow(1, 0, f).unwrap().contiguous().unwrap(), au.narrow(1, f, f).unwrap().contiguous().unwrap());
            let y = tensor(emu::swiglu_packed_fwd(&host::<T>(&au), f, grid), &[6, f]);
            let want = tensor(emu::swiglu_fwd(&host::<T>(&a), &host::<T>(&u), grid), &[6, f]);
            assert_eq!(rel(&y, &want), 0.0, "packed swiglu {dtype:?}");
            let g = randn(&[6, f]);
            let d = tensor(emu::swiglu_packed_bwd(&host::<T>(&au), &host::<T>(&g), f, grid), &[6, 2 * f]);
            let (da, du) = emu::swiglu_bwd(&host::<T>(&a), &host::<T>(&u), &host::<T>(&g), grid);
            let want = Tensor::cat(&[tensor(da, &[6, f]), tensor(du, &[6, f])], 1).unwrap();
            assert_eq!(rel(&d, &want), 0.0, "packed swiglu backward {dtype:?}");
        }
    }
    case::<f32>(DType::F32);
    case::<half::bf16>(DType::BF16);
    case::<half::f16>(DType::F16);
}

/// Decoding attention (`reft_decode_attn`) against an f64 softmax attention over the same
/// rounded inputs: grouped query rows, keys read from a cache with spare capacity (heads
/// `kcap` positions apart), masked keys, head sizes that are and are not multiples of a warp.
/// And the fused residual add + RMSNorm against the add and then the RMSNorm kernel, and the
/// RMSNorm backward + residual gradient against the backward and then the add, to the bit.
#[test]
fn fused_decode_attention_and_add_rmsnorm() {
    fn case<T: WithDType + Elem>(dtype: DType) {
        let dev = Device::Cpu;
        let randn = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, &dev).unwrap().to_dtype(dtype).unwrap();
        let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let (b, nkv, g, tk, kcap) = (2, 2, 3, 9, 11);
        for hd in [64usize, 40] {
            let (q, k, v) = (randn(&[b, nkv, g, hd]), randn(&[b, nkv, kcap, hd]), randn(&[b, nkv, kcap, hd]));
            let mask: Vec<f32> = (0..b * tk).map(|i| if i == 2 || i == tk + 7 { -1e30 } else { 0.0 }).collect();
            let scale = 1.0 / (hd as f32).sqrt();
            let got = emu::decode_attn(&host::<T>(&q), &host::<T>(&k), &host::<T>(&v), &mask, [b, nkv, g, hd], tk, kcap, hd, scale);
            let got = tensor(got, &[b, nkv, g, hd]);
            let (qh, kh, vh) = (f64s(&q), f64s(&k), f64s(&v));
            let mut want = vec![0f64; qh.len()];
            for row in 0..b * nkv * g {
                let (bh, bi) = (row / g, row / g / nkv);
                let s: Vec<f64> = (0..tk)
                    .map(|j| (0..hd).map(|d| qh[row * hd + d] * kh[(bh * kcap + j) * hd + d]).sum::<f64>() * scale as f64 + mask[bi * tk + j] as f64)
                    .collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - mx).exp()).sum();
                for d in 0..hd {
                    want[row * hd + d] = (0..tk).map(|j| (s[j] - mx).exp() / z * vh[(bh * kcap + j) * hd + d]).sum();
                }
            }
            let want = Tensor::from_vec(want, &[b, nkv, g, hd], &dev).unwrap();
            let t = match dtype {
                DType::F32 => 1e-5,
                DType::BF16 => 1.6e-2,
                _ => 2e-3,
            };
            assert!(rel(&got, &want) < t, "decode attention {dtype:?} hd {hd}: {}", rel(&got, &want));
        }
        let (x, r, w) = (randn(&[7, 72]), randn(&[7, 72]), randn(&[72]));
        let (s, y) = emu::add_rmsnorm_fwd(&host::<T>(&x), &host::<T>(&r), &host::<T>(&w), 1e-5);
        let sum = (&x + &r).unwrap();
        assert_eq!(rel(&tensor(s, &[7, 72]), &sum), 0.0, "add + rmsnorm: the sum {dtype:?}");
        let want = tensor(emu::rmsnorm_fwd(&host::<T>(&sum), &host::<T>(&w), 1e-5), &[7, 72]);
        assert_eq!(rel(&tensor(y, &[7, 72]), &want), 0.0, "add + rmsnorm: the norm {dtype:?}");
        // The RMSNorm backward with the residual branch's gradient added in the same pass.
        let (g, res) = (randn(&[7, 72]), randn(&[7, 72]));
        let fused = tensor(emu::rmsnorm_bwd_add(&host::<T>(&x), &host::<T>(&w), &host::<T>(&g), &host::<T>(&res), 1e-5), &[7, 72]);
        let want = (tensor(emu::rmsnorm_bwd(&host::<T>(&x), &host::<T>(&w), &host::<T>(&g), 1e-5), &[7, 72]) + &res).unwrap();
        assert_eq!(rel(&fused, &want), 0.0, "rmsnorm backward + residual {dtype:?}");
    }
    case::<f32>(DType::F32);
    case::<half::bf16>(DType::BF16);
    case::<half::f16>(DType::F16);
}

#[test]
fn fused_dropout_mask_matches_the_host_mask() {
    use reft_core::interventions::{keep_bit, keep_threshold};
    for (n, p, key, grid) in [(1usize, 0.5f64, 7u64, None), (1000, 0.1, 0xDEAD_BEEF, None), (4099, 0.05, u64::MAX, Some(3)), (70_000, 0.3, 42, None)] {
        let (threshold, scale) = (keep_threshold(1.0 - p), (1.0 / (1.0 - p)) as f32);
        let dev = emu::dropout_mask(n, key, threshold, scale, grid);
        let host: Vec<f32> = (0..n as u64).map(|i| if keep_bit(key, i, threshold) { scale } else { 0.0 }).collect();
        assert_eq!(dev, host, "n {n}, p {p}");
        if n >= 1000 {
            // Kept at the configured rate (binomial: within 5 standard deviations).
            let kept = host.iter().filter(|&&v| v > 0.0).count() as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!((kept - n as f64 * (1.0 - p)).abs() < 5.0 * sd, "kept {kept} of {n} at p {p}");
        }
    }
    // Different keys give different masks; the same key the same one.
    let t = keep_threshold(0.5);
    let a: Vec<bool> = (0..256).map(|i| keep_bit(1, i, t)).collect();
    let b: Vec<bool> = (0..256).map(|i| keep_bit(2, i, t)).collect();
    assert_ne!(a, b);
    assert_eq!(a, (0..256).map(|i| keep_bit(1, i, t)).collect::<Vec<_>>());
    assert_eq!(keep_threshold(1.0), 1 << 24);
    assert!((0..10_000).all(|i| keep_bit(9, i, 1 << 24)) && !(0..10_000).any(|i| keep_bit(9, i, 0)));
}
