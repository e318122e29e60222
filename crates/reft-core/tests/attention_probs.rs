//! `ops::attention_probs` (softmax of the scaled query-key product under a mask, with a backward
//! to queries and keys that needs only the probabilities): gradients against central
//! differences in f64, the same values and gradients as the two-node composition it replaces
//! (`batched_matmul`, then `attention_softmax`) in f32, and bf16 within its rounding.

use candle_core::{DType, Device, Tensor, Var};
use reft_core::ops::{attention_probs, attention_softmax, batched_matmul};

fn masks(dtype: DType) -> Vec<(&'static str, Tensor)> {
    let dev = Device::Cpu;
    let pad = Tensor::from_vec(vec![0f32, 0., -1e30, 0., 0., 0., 0., 0., 0., -1e30, -1e30, 0., 0., 0., 0., 0.], (2, 1, 1, 8), &dev).unwrap();
    let causal: Vec<f32> = (0..2 * 3 * 8).map(|i| if (i % 8) > (i / 8) % 3 + 4 { -1e30 } else { 0.0 }).collect();
    let causal = Tensor::from_vec(causal, (2, 1, 3, 8), &dev).unwrap();
    vec![("pad", pad.to_dtype(dtype).unwrap()), ("causal", causal.to_dtype(dtype).unwrap())]
}

/// `sum(P · c)` and its gradients to q and k, with `f` computing P.
fn grads(q: &Tensor, k: &Tensor, c: &Tensor, f: &dyn Fn(&Tensor, &Tensor) -> Tensor) -> (Tensor, Tensor, Tensor) {
    let (qv, kv) = (Var::from_tensor(q).unwrap(), Var::from_tensor(k).unwrap());
    let p = f(qv.as_tensor(), kv.as_tensor());
    let g = (p.to_dtype(DType::F32).unwrap() * c.to_dtype(DType::F32).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
    (p, g.get(qv.as_tensor()).unwrap().clone(), g.get(kv.as_tensor()).unwrap().clone())
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_dtype(DType::F64).unwrap(), b.to_dtype(DType::F64).unwrap());
    let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    d / b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-12)
}

#[test]
fn attention_probs_matches_finite_differences() {
    let dev = Device::Cpu;
    // [b, h, tq, d] queries against [b, h, tk, d] keys, tq = 3 < tk = 8 (a cached prefix).
    let q0 = Tensor::randn(0f64, 1.0, (2, 2, 3, 4), &dev).unwrap();
    let k0 = Tensor::randn(0f64, 1.0, (2, 2, 8, 4), &dev).unwrap();
    let c = Tensor::randn(0f64, 1.0, (2, 2, 3, 8), &dev).unwrap();
    for (name, mask) in masks(DType::F64) {
        let f = |q: &Tensor, k: &Tensor| attention_probs(q, k, &mask, 0.4).unwrap();
        let (_, gq, gk) = grads(&q0, &k0, &c, &f);
        let loss = |q: &Tensor, k: &Tensor| (f(q, k) * &c).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        for (which, x0, g) in [("q", &q0, &gq), ("k", &k0, &gk)] {
            let x: Vec<f64> = x0.flatten_all().unwrap().to_vec1().unwrap();
            let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
            for i in [0, 5, x.len() / 2, x.len() - 1] {
                let at = |delta: f64| {
                    let mut v = x.clone();
                    v[i] += delta;
                    let t = Tensor::from_vec(v, x0.shape(), &dev).unwrap();
                    if which == "q" { loss(&t, &k0) } else { loss(&q0, &t) }
                };
                let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
                assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "{name} d{which}[{i}]: fd {fd} vs analytic {}", g[i]);
            }
        }
    }
}

#[test]
fn attention_probs_equals_product_then_softmax() {
    let dev = Device::Cpu;
    let q = Tensor::randn(0f32, 1.0, (2, 3, 3, 16), &dev).unwrap();
    let k = Tensor::randn(0f32, 1.0, (2, 3, 8, 16), &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, (2, 3, 3, 8), &dev).unwrap();
    for (name, mask) in masks(DType::F32) {
        let (p, gq, gk) = grads(&q, &k, &c, &|q, k| attention_probs(q, k, &mask, 0.25).unwrap());
        let (p0, gq0, gk0) = grads(&q, &k, &c, &|q, k| attention_softmax(&batched_matmul(q, &k.t().unwrap()).unwrap(), &mask, 0.25).unwrap());
        assert!(max_rel(&p, &p0) < 1e-6, "{name}: probabilities");
        assert!(max_rel(&gq, &gq0) < 1e-5, "{name}: dq {}", max_rel(&gq, &gq0));
        assert!(max_rel(&gk, &gk0) < 1e-5, "{name}: dk {}", max_rel(&gk, &gk0));
        // bf16 (the path CUDA and half precision take): within bf16 rounding of f32.
        let (qb, kb) = (q.to_dtype(DType::BF16).unwrap(), k.to_dtype(DType::BF16).unwrap());
        let mb = mask.to_dtype(DType::BF16).unwrap();
        let (pb, gqb, gkb) = grads(&qb, &kb, &c, &|q, k| attention_probs(q, k, &mb, 0.25).unwrap());
        assert_eq!(pb.dtype(), DType::BF16);
        assert!(max_rel(&pb, &p0) < 3e-2, "{name}: bf16 probabilities {}", max_rel(&pb, &p0));
        assert!(max_rel(&gqb, &gq0) < 5e-2 && max_rel(&gkb, &gk0) < 5e-2, "{name}: bf16 gradients {} {}", max_rel(&gqb, &gq0), max_rel(&gkb, &gk0));
    }
}

#[test]
fn attention_probs_rejects_mismatched_shapes() {
    let dev = Device::Cpu;
    let q = Tensor::zeros((2, 3, 3, 16), DType::F32, &dev).unwrap();
    let k = Tensor::zeros((2, 3, 8, 8), DType::F32, &dev).unwrap();
    let mask = Tensor::zeros((2, 1, 1, 8), DType::F32, &dev).unwrap();
    assert!(attention_probs(&q, &k, &mask, 1.0).is_err());
    let k = Tensor::zeros((2, 3, 8, 16), DType::F32, &dev).unwrap();
    let bad = Tensor::zeros((2, 1, 2, 8), DType::F32, &dev).unwrap();
    assert!(attention_probs(&q, &k, &bad, 1.0).is_err());
}
