//! Finite-difference gradient checks in f64: every intervention kind at every component, through
//! the whole model (so the custom ops — frozen linear, RMSNorm, softmax, RoPE, attention with
//! masks, log-softmax loss, gather/scatter of positions — are all on the path).

mod common;

use candle_core::{DType, Tensor};
use common::*;
use reft_core::models::Component;

fn loss(m: &reft_core::ReftModel, b: &reft_core::Batch) -> f64 {
    m.forward(b, false).unwrap().loss.unwrap()
}

/// Central differences on a few entries of every parameter against the analytic gradient.
fn check(m: &reft_core::ReftModel, b: &reft_core::Batch, label: &str) {
    let (_, _, grads) = m.gradients(std::slice::from_ref(b)).unwrap();
    let params = m.named_params();
    let eps = 1e-4;
    for ((name, var), g) in params.iter().zip(&grads) {
        let orig = var.as_tensor().detach().copy().unwrap();
        let flat: Vec<f32> = orig.flatten_all().unwrap().to_vec1().unwrap();
        let gflat: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let n = flat.len();
        let gnorm = gflat.iter().map(|x| (*x as f64).abs()).fold(0.0, f64::max);
        for &k in &[0, n / 3, n / 2, n - 1] {
            // The rotation parameter only uses its strictly-lower triangle; pick entries there.
            let k = if name.ends_with("rotation.a") { n - 1 - (k % (n / 2)) } else { k };
            let mut plus = flat.clone();
            plus[k] += eps as f32;
            var.set(&Tensor::from_vec(plus, orig.shape(), orig.device()).unwrap()).unwrap();
            let lp = loss(m, b);
            let mut minus = flat.clone();
            minus[k] -= eps as f32;
            var.set(&Tensor::from_vec(minus, orig.shape(), orig.device()).unwrap()).unwrap();
            let lm = loss(m, b);
            var.set(&orig).unwrap();
            // Divide by the step actually taken: f32 parameters round x ± eps.
            let step = (flat[k] + eps as f32) as f64 - (flat[k] - eps as f32) as f64;
            let fd = (lp - lm) / step;
            let an = gflat[k] as f64;
            let tol = 1e-4 * gnorm.max(1e-3) + 1e-4 * fd.abs();
            assert!((fd - an).abs() <= tol, "{label} {name}[{k}]: finite difference {fd:e} vs analytic {an:e}");
        }
        assert!(gnorm > 0.0, "{label} {name}: gradient is identically zero");
    }
}

#[test]
fn every_kind_at_block_output() {
    for kind in ALL_KINDS {
        let m = reft(&[(kind, 0, Component::BlockOutput)], DType::F64, 1);
        check(&m, &batch(1), &format!("{kind:?}"));
    }
}

#[test]
fn every_component_and_stacked_interventions() {
    use reft_core::interventions::Kind::*;
    for comp in [Component::BlockInput, Component::AttentionOutput, Component::MlpOutput] {
        let m = reft(&[(Loreft, 1, comp)], DType::F64, 2);
        check(&m, &batch(1), &format!("{comp:?}"));
    }
    // Two interventions on the same site apply in order; a third on another layer.
    let m = reft(&[(Loreft, 0, Component::BlockOutput), (Direft, 1, Component::BlockOutput), (Noreft, 0, Component::BlockOutput)], DType::F64, 3);
    check(&m, &batch(3), "stacked");
}

/// Encoders (tiny BERT with a 3-class head, tiny RoBERTa with a regression head, loaded in f64):
/// LayerNorm, GELU, bidirectional attention, token types, the head and its loss, with
/// interventions at every component; the head's trainable tensors are checked too.
#[test]
fn encoders_with_heads_at_every_component() {
    use reft_core::head::HeadSpec;
    use reft_core::interventions::Kind::*;
    use reft_core::models::{load_model, LoadOptions};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyreft/encoders");
    let opts = LoadOptions { dtype: DType::F64, ..Default::default() };
    for (name, labels, sites) in [
        ("tiny-bert", 3usize, vec![(Loreft, 0, Component::BlockInput), (Direft, 1, Component::AttentionOutput)]),
        ("tiny-roberta", 1, vec![(Loreft, 1, Component::MlpOutput), (Noreft, 0, Component::BlockOutput)]),
    ] {
        let base = std::sync::Arc::new(load_model(&dir.join(name), &opts).unwrap());
        let specs: Vec<_> = sites.iter().map(|&(k, l, c)| spec(k, l, c)).collect();
        let head = HeadSpec { num_labels: labels, train_dense: Some(true) };
        let m = reft_core::ReftModel::with_head(base, &specs, Some(head), 5).unwrap();
        let (b, t) = (2, 6);
        let batch = reft_core::Batch {
            input_ids: vec![2, 11, 12, 13, 3, 5, 2, 21, 22, 3, 1, 1],
            batch_size: b,
            seq_len: t,
            attention_mask: Some(vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]),
            positions: Some(vec![0, 2, 0, 3, 1, 4, 0, 2]),
            num_positions: 2,
            token_type_ids: (labels > 1).then(|| vec![0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0]),
            class_labels: Some(if labels > 1 { vec![2.0, 0.0] } else { vec![1.5, 4.0] }),
            ..Default::default()
        };
        check(&m, &batch, name);
    }
}

/// Each op on its own: analytic gradient of `sum(op(x) * c)` against central differences.
mod ops {
    use candle_core::{DType, Device, Tensor, Var};
    use reft_core::ops::{apply_rope, attention_softmax, batched_matmul, frozen_linear, gelu, layer_norm, lm_cross_entropy_with, log_softmax_last, rms_norm, softmax_last, swiglu, RopeTables};

    fn check(name: &str, shape: (usize, usize, usize, usize), f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>) {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, shape, &dev).unwrap()).unwrap();
        let y = f(x.as_tensor()).unwrap();
        let c = Tensor::randn(0f64, 1.0, y.shape(), &dev).unwrap();
        let loss = (y * &c).unwrap().sum_all().unwrap();
        let g: Vec<f64> = loss.backward().unwrap().get(x.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient")).flatten_all().unwrap().to_vec1().unwrap();
        let x0: Vec<f64> = x.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let eval = |v: Vec<f64>| -> f64 {
            let t = Tensor::from_vec(v, shape, &dev).unwrap();
            (f(&t).unwrap() * &c).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let n = x0.len();
        for k in [0, 1, n / 2, n - 1] {
            let (mut p, mut m) = (x0.clone(), x0.clone());
            p[k] += 1e-6;
            m[k] -= 1e-6;
            let fd = (eval(p) - eval(m)) / 2e-6;
            assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "{name}[{k}]: fd {fd} vs analytic {}", g[k]);
        }
    }

    #[test]
    fn each_op_matches_finite_differences() {
        let dev = Device::Cpu;
        let w = Tensor::randn(1f64, 0.2, 8, &dev).unwrap();
        check("rms_norm", (2, 1, 3, 8), &|x| rms_norm(x, &w, 1e-5));
        let b = Tensor::randn(0f64, 0.3, 8, &dev).unwrap();
        check("layer_norm", (2, 1, 3, 8), &|x| layer_norm(x, &w, &b, 1e-12));
        check("gelu", (2, 1, 3, 8), &|x| gelu(x));
        // Fused attention softmax: key-padding mask [b,1,1,k] and causal-style mask [b,1,q,k].
        let pad = Tensor::from_vec(vec![0f32, 0., -1e30, 0., 0., 0., 0., 0., 0., -1e30, -1e30, 0., 0., 0., 0., 0.], (2, 1, 1, 8), &dev).unwrap();
        check("attention_softmax/pad", (2, 2, 3, 8), &|x| attention_softmax(x, &pad, 0.35));
        let causal: Vec<f32> = (0..2 * 3 * 8).map(|i| if (i % 8) > (i / 8) % 3 + 4 { -1e30 } else { 0.0 }).collect();
        let causal = Tensor::from_vec(causal, (2, 1, 3, 8), &dev).unwrap();
        check("attention_softmax/causal", (2, 2, 3, 8), &|x| attention_softmax(x, &causal, 0.35));
        check("softmax", (2, 1, 3, 8), &|x| softmax_last(x));
        check("log_softmax", (2, 1, 3, 8), &|x| log_softmax_last(x));
        let inv: Vec<f64> = (0..4).map(|i| 1.0 / 10_000f64.powf(2.0 * i as f64 / 8.0)).collect();
        let rope = RopeTables::new(&inv, &[vec![0, 1, 5], vec![2, 3, 4]], DType::F64, &dev).unwrap();
        check("rope", (2, 1, 3, 8), &|x| apply_rope(x, &rope));
        let other = Tensor::randn(0f64, 1.0, (2, 1, 3, 8), &dev).unwrap();
        check("swiglu/gate", (2, 1, 3, 8), &|x| swiglu(x, &other));
        check("swiglu/up", (2, 1, 3, 8), &|x| swiglu(&other, x));
        let lin = Tensor::randn(0f64, 0.5, (5, 8), &dev).unwrap();
        check("frozen_linear", (2, 1, 3, 8), &|x| frozen_linear(x, &lin));
        // More inputs than outputs: FrozenLinear keeps the weight as a view of an [in, out] copy.
        let stored = reft_core::ops::FrozenLinear::new(lin.clone(), None);
        assert!(!stored.weight.is_contiguous() && stored.weight.dims() == [5, 8]);
        check("frozen_linear/input-major", (2, 1, 3, 8), &|x| stored.forward(x));
        // A bias is added inside the op (one graph node); with and without a graph, same values.
        let biased = reft_core::ops::FrozenLinear::new(lin.clone(), Some(Tensor::randn(0f64, 1.0, 5, &dev).unwrap()));
        check("frozen_linear/bias", (2, 1, 3, 8), &|x| biased.forward(x));
        let xv = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 3, 8), &dev).unwrap()).unwrap();
        let plain = biased.forward(&xv.as_tensor().detach()).unwrap();
        assert!(max_diff(&biased.forward(xv.as_tensor()).unwrap(), &plain) < 1e-12, "biased op equals matmul + bias");
        let x = Tensor::randn(0f64, 1.0, (2, 3, 8), &dev).unwrap();
        let diff = (stored.forward(&x).unwrap() - frozen_linear(&x, &lin).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f64>().unwrap() < 1e-12, "same product in either layout");
        // Fused LM-head cross-entropy: probabilities kept (one chunk), and recomputed in chunks
        // of 2 rows and of 1 row.
        let head = Tensor::randn(0f64, 0.7, (11, 8), &dev).unwrap();
        let y = Tensor::from_vec(vec![3u32, 0, 10, 7, 7, 1], 6, &dev).unwrap();
        for (label, chunk, keep) in [("lm_ce/kept", 1 << 20, 1 << 20), ("lm_ce/recomputed", 2 * 11 * 8, 0), ("lm_ce/rows", 11 * 8, 0)] {
            check(label, (2, 1, 3, 8), &|x| lm_cross_entropy_with(&x.reshape((6, 8))?, &head, &y, chunk, keep));
        }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    /// The fused CPU kernels (RMSNorm, RoPE, SwiGLU) against the primitive composites that other
    /// devices run, in f32 (forward) and through a backward: a small shape that runs inline and
    /// one above the 64K-element threshold that runs on the thread pool.
    #[test]
    fn fused_cpu_ops_equal_their_composites() {
        fused_vs_composite((2, 3, 5, 8));
        fused_vs_composite((2, 4, 70, 128));
    }

    fn fused_vs_composite(shape: (usize, usize, usize, usize)) {
        let (_, _, t, hd) = shape;
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev).unwrap()).unwrap();
        let w = Tensor::randn(1f32, 0.2, hd, &dev).unwrap();
        let inv = (x.sqr().unwrap().mean_keepdim(3).unwrap() + 1e-5).unwrap().sqrt().unwrap().recip().unwrap();
        let want = x.broadcast_mul(&inv).unwrap().broadcast_mul(&w).unwrap();
        let got = rms_norm(&x, &w, 1e-5).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "rms_norm");
        let c = Tensor::randn(0f32, 1.0, got.shape(), &dev).unwrap();
        let g1 = (got * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (want * &c).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-5, "rms_norm backward");

        let inv_freq: Vec<f64> = (0..hd / 2).map(|i| 1.0 / 10_000f64.powf(2.0 * i as f64 / hd as f64)).collect();
        let pos: Vec<Vec<i64>> = vec![(0..t as i64).collect(), (3..3 + t as i64).collect()];
        let rope = RopeTables::new(&inv_freq, &pos, DType::F32, &dev).unwrap();
        let (x1, x2) = (x.narrow(3, 0, hd / 2).unwrap(), x.narrow(3, hd / 2, hd / 2).unwrap());
        let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], 3).unwrap();
        let want = (x.broadcast_mul(&rope.cos).unwrap() + rotated.broadcast_mul(&rope.sin).unwrap()).unwrap();
        let got = apply_rope(&x, &rope).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "rope");
        let g1 = (got * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (want * &c).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-5, "rope backward");

        let up = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
        let got = swiglu(&x, &up).unwrap();
        let want = (x.silu().unwrap() * &up).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "swiglu");
        let g1 = (got * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (want * &c).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-5, "swiglu backward");
        assert!(swiglu(&x, &up.narrow(3, 0, hd / 2).unwrap()).is_err(), "shapes must match");

        // GELU and the attention softmax compute f32 data at f32 precision (erff, expf).
        let got = gelu(&x).unwrap();
        let cdf = (((x.as_tensor() / std::f64::consts::SQRT_2).unwrap().erf().unwrap() + 1.0).unwrap() * 0.5).unwrap();
        let want = (x.as_tensor() * cdf).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "gelu");
        let g1 = (got * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (want * &c).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-5, "gelu backward");
        let mask = Tensor::zeros((shape.0, 1, 1, hd), DType::F32, &dev).unwrap();
        let want = softmax_last(&(x.as_tensor() * 0.125).unwrap()).unwrap();
        assert!(max_diff(&attention_softmax(&x, &mask, 0.125).unwrap(), &want) < 1e-6, "attention softmax");
    }

    #[test]
    fn batched_matmul_matches_candle_and_finite_differences() {
        let dev = Device::Cpu;
        // 2 × 3 heads: enough batches for the parallel path on any thread count up to 3.
        let b = Tensor::randn(0f64, 1.0, (2, 3, 8, 5), &dev).unwrap();
        check("batched_matmul/lhs", (2, 3, 4, 8), &|x| batched_matmul(x, &b));
        let a = Tensor::randn(0f64, 1.0, (2, 3, 5, 4), &dev).unwrap();
        check("batched_matmul/rhs", (2, 3, 4, 8), &|x| batched_matmul(&a, x));
        // A transposed (strided) operand, as attention passes kᵀ; f32 against candle's matmul.
        let q = Tensor::randn(0f32, 1.0, (4, 3, 7, 6), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (4, 3, 9, 6), &dev).unwrap();
        let want: Vec<f32> = q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let got: Vec<f32> = batched_matmul(&q, &k.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got.len(), want.len());
        for (x, y) in got.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
        assert!(batched_matmul(&q, &q).is_err(), "7x6 · 7x6 does not multiply");
    }

    #[test]
    fn lm_cross_entropy_equals_log_softmax_and_gather() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f64, 1.0, (7, 8), &dev).unwrap();
        let head = Tensor::randn(0f64, 0.7, (13, 8), &dev).unwrap();
        let y = Tensor::from_vec(vec![3u32, 0, 12, 7, 7, 1, 5], 7, &dev).unwrap();
        let reference = log_softmax_last(&frozen_linear(&x, &head).unwrap()).unwrap().gather(&y.reshape((7, 1)).unwrap(), 1).unwrap().neg().unwrap().squeeze(1).unwrap();
        let r: Vec<f64> = reference.to_vec1().unwrap();
        for (chunk, keep) in [(1 << 20, 1 << 20), (3 * 13 * 8, 0)] {
            let got: Vec<f64> = lm_cross_entropy_with(&x, &head, &y, chunk, keep).unwrap().to_vec1().unwrap();
            for (a, b) in r.iter().zip(&got) {
                assert!((a - b).abs() < 1e-12, "chunk {chunk}: {a} vs {b}");
            }
        }
        assert!(lm_cross_entropy_with(&x, &head, &y.narrow(0, 0, 5).unwrap(), 1 << 20, 1 << 20).is_err(), "target count must match rows");
    }

    #[test]
    fn frozen_linear_leaves_no_weight_gradient() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 8), &dev).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (5, 8), &dev).unwrap();
        let grads = frozen_linear(x.as_tensor(), &w).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&w).is_none(), "the frozen weight must get no gradient buffer");
        assert!(grads.get(x.as_tensor()).is_some());
    }
}
