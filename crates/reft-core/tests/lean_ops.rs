//! The lean path of RMSNorm, RoPE, SwiGLU, GELU and the attention softmax (`ops/attach.rs`:
//! forward outside the graph, closed-form backward), which CUDA and half precision run, and of
//! LayerNorm, which every device runs: gradients against
//! central differences in f64, the same values and gradients as the native CPU kernels in f32, and
//! bf16 within its rounding of f32.

use candle_core::{DType, Device, Tensor, Var};
use reft_core::ops::{
    apply_rope, apply_rope_lean, attention_softmax, attention_softmax_lean, gelu, gelu_lean, layer_norm, rms_norm, rms_norm_lean, swiglu,
    swiglu_lean, RopeTables,
};

type Op<'a> = &'a dyn Fn(&Tensor) -> candle_core::Result<Tensor>;

/// Analytic gradient of `sum(f(x) · c)` against central differences at a few coordinates.
fn fd_check(name: &str, shape: (usize, usize, usize, usize), f: Op) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, shape, &dev).unwrap()).unwrap();
    let y = f(x.as_tensor()).unwrap();
    let c = Tensor::randn(0f64, 1.0, y.shape(), &dev).unwrap();
    let g: Vec<f64> = (y * &c).unwrap().sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient")).flatten_all().unwrap().to_vec1().unwrap();
    let x0: Vec<f64> = x.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let eval = |v: Vec<f64>| (f(&Tensor::from_vec(v, shape, &dev).unwrap()).unwrap() * &c).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let n = x0.len();
    for k in [0, 1, n / 3, n / 2, n - 1] {
        let (mut p, mut m) = (x0.clone(), x0.clone());
        p[k] += 1e-6;
        m[k] -= 1e-6;
        let fd = (eval(p) - eval(m)) / 2e-6;
        assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "{name}[{k}]: fd {fd} vs analytic {}", g[k]);
    }
}

fn tables(t: usize, hd: usize, dtype: DType) -> RopeTables {
    let inv: Vec<f64> = (0..hd / 2).map(|i| 1.0 / 10_000f64.powf(2.0 * i as f64 / hd as f64)).collect();
    RopeTables::new(&inv, &[(0..t as i64).collect(), (2..2 + t as i64).collect()], dtype, &Device::Cpu).unwrap()
}

fn masks(dtype: DType) -> (Tensor, Tensor) {
    let dev = Device::Cpu;
    let pad = Tensor::from_vec(vec![0f32, 0., -1e30, 0., 0., 0., 0., 0., 0., -1e30, -1e30, 0., 0., 0., 0., 0.], (2, 1, 1, 8), &dev).unwrap();
    let causal: Vec<f32> = (0..2 * 3 * 8).map(|i| if (i % 8) > (i / 8) % 3 + 4 { -1e30 } else { 0.0 }).collect();
    let causal = Tensor::from_vec(causal, (2, 1, 3, 8), &dev).unwrap();
    (pad.to_dtype(dtype).unwrap(), causal.to_dtype(dtype).unwrap())
}

#[test]
fn lean_ops_match_finite_differences() {
    let dev = Device::Cpu;
    let shape = (2, 2, 3, 8);
    let w = Tensor::randn(1f64, 0.2, 8, &dev).unwrap();
    fd_check("rms_norm_lean", shape, &|x| rms_norm_lean(x, &w, 1e-5));
    let rope = tables(3, 8, DType::F64);
    fd_check("apply_rope_lean", shape, &|x| apply_rope_lean(x, &rope));
    let other = Tensor::randn(0f64, 1.0, shape, &dev).unwrap();
    fd_check("swiglu_lean/gate", shape, &|x| swiglu_lean(x, &other));
    fd_check("swiglu_lean/up", shape, &|x| swiglu_lean(&other, x));
    let (pad, causal) = masks(DType::F64);
    fd_check("attention_softmax_lean/pad", shape, &|x| attention_softmax_lean(x, &pad, 0.35));
    fd_check("attention_softmax_lean/causal", shape, &|x| attention_softmax_lean(x, &causal, 0.35));
    fd_check("gelu_lean", shape, &|x| gelu_lean(x));
    let b = Tensor::randn(0f64, 0.3, 8, &dev).unwrap();
    fd_check("layer_norm", shape, &|x| layer_norm(x, &w, &b, 1e-12));
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    d / b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-12)
}

/// Value and input gradient of `sum(f(x) · c)` with `x` in `dtype` (gradients read as f32).
fn value_and_grad(x: &Tensor, dtype: DType, c: &Tensor, f: Op) -> (Tensor, Tensor) {
    let v = Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap();
    let y = f(v.as_tensor()).unwrap();
    let g = (y.to_dtype(DType::F32).unwrap() * c).unwrap().sum_all().unwrap().backward().unwrap();
    (y.to_dtype(DType::F32).unwrap(), g.get(v.as_tensor()).unwrap().to_dtype(DType::F32).unwrap())
}

/// Lean against native, both in f32 (one rounding apart), and lean in bf16 against native f32.
fn compare(name: &str, x: &Tensor, native: Op, lean_f32: Op, lean_bf16: Op) {
    let c = Tensor::randn(0f32, 1.0, x.shape(), &Device::Cpu).unwrap();
    let (yn, gn) = value_and_grad(x, DType::F32, &c, native);
    let (yl, gl) = value_and_grad(x, DType::F32, &c, lean_f32);
    assert!(max_rel(&yl, &yn) < 1e-5, "{name}: lean f32 value off by {}", max_rel(&yl, &yn));
    assert!(max_rel(&gl, &gn) < 1e-4, "{name}: lean f32 gradient off by {}", max_rel(&gl, &gn));
    let (yb, gb) = value_and_grad(x, DType::BF16, &c, lean_bf16);
    assert!(max_rel(&yb, &yn) < 2e-2, "{name}: bf16 value off by {}", max_rel(&yb, &yn));
    assert!(max_rel(&gb, &gn) < 5e-2, "{name}: bf16 gradient off by {}", max_rel(&gb, &gn));
}

#[test]
fn lean_ops_equal_the_native_cpu_kernels() {
    let dev = Device::Cpu;
    // Above the native kernels' 64K-element threshold, so they run on the thread pool.
    let shape = (2, 4, 70, 128);
    let x = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
    let w = Tensor::randn(1f32, 0.2, 128, &dev).unwrap();
    let wb = w.to_dtype(DType::BF16).unwrap();
    compare("rms_norm", &x, &|x| rms_norm(x, &w, 1e-5), &|x| rms_norm_lean(x, &w, 1e-5), &|x| rms_norm(x, &wb, 1e-5));
    let (r32, rb) = (tables(70, 128, DType::F32), tables(70, 128, DType::BF16));
    compare("rope", &x, &|x| apply_rope(x, &r32), &|x| apply_rope_lean(x, &r32), &|x| apply_rope(x, &rb));
    let up = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
    let upb = up.to_dtype(DType::BF16).unwrap();
    compare("swiglu", &x, &|x| swiglu(x, &up), &|x| swiglu_lean(x, &up), &|x| swiglu(x, &upb));
    compare("gelu", &x, &|x| gelu(x), &|x| gelu_lean(x), &|x| gelu(x));
    // LayerNorm has no native kernel: the primitive composite is the reference.
    let b = Tensor::randn(0f32, 0.3, 128, &dev).unwrap();
    let bb = b.to_dtype(DType::BF16).unwrap();
    let composite = |x: &Tensor| -> candle_core::Result<Tensor> {
        let c = x.broadcast_sub(&x.mean_keepdim(3)?)?;
        let inv = (c.sqr()?.mean_keepdim(3)? + 1e-5)?.sqrt()?.recip()?;
        c.broadcast_mul(&inv)?.broadcast_mul(&w)?.broadcast_add(&b)
    };
    compare("layer_norm", &x, &composite, &|x| layer_norm(x, &w, &b, 1e-5), &|x| layer_norm(x, &wb, &bb, 1e-5));
    // Attention: key padding on the second row, scores of a [2, 4, 70, 128] "sequence".
    let mask: Vec<f32> = (0..2 * 128).map(|i| if i >= 128 + 100 { -1e30 } else { 0.0 }).collect();
    let m32 = Tensor::from_vec(mask, (2, 1, 1, 128), &dev).unwrap();
    let mb = m32.to_dtype(DType::BF16).unwrap();
    compare("attention_softmax", &x, &|x| attention_softmax(x, &m32, 0.3), &|x| attention_softmax_lean(x, &m32, 0.3), &|x| attention_softmax(x, &mb, 0.3));
}

#[test]
fn lean_ops_without_a_graph_return_the_value() {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (1, 2, 3, 8), &dev).unwrap().to_dtype(DType::BF16).unwrap();
    let w = Tensor::ones(8, DType::BF16, &dev).unwrap();
    let y = rms_norm(&x, &w, 1e-5).unwrap();
    assert!(!y.track_op(), "no graph in, no graph out");
    assert_eq!(y.dtype(), DType::BF16);
    let p = attention_softmax(&x, &Tensor::zeros((1, 1, 1, 8), DType::BF16, &dev).unwrap(), 1.0).unwrap();
    assert_eq!(p.dtype(), DType::BF16, "probabilities come back in the scores' dtype");
    let sums: Vec<f32> = p.to_dtype(DType::F32).unwrap().sum(3).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-2), "{sums:?}");
}
