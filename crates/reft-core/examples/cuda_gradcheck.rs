//! Locates CUDA-vs-CPU gradient differences: the analytic gradient of each custom op and of each
//! intervention parameter of the tiny model, computed on both devices, with the max relative
//! difference printed per item. Build with `--features cuda`; run on a GPU machine.

use candle_core::{DType, Device, Tensor, Var, D};
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{load_model, Component, LoadOptions};
use reft_core::ops::{apply_rope, frozen_linear, log_softmax_last, rms_norm, softmax_last, RopeTables};
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

fn rel(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let s = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-12);
    d / s
}

fn op_grad(dev: &Device, name: &str, x0: &Tensor, f: &dyn Fn(&Tensor, &Device) -> Tensor) -> Tensor {
    let x = Var::from_tensor(&x0.to_device(dev).unwrap()).unwrap();
    let y = f(x.as_tensor(), dev);
    let c = Tensor::arange(0f32, y.elem_count() as f32, dev).unwrap().reshape(y.shape()).unwrap().sin().unwrap();
    let g = (y * c).unwrap().sum_all().unwrap().backward().unwrap();
    g.get(x.as_tensor()).unwrap_or_else(|| panic!("{name}: no grad on {dev:?}")).clone()
}

fn main() {
    let cuda = reft_core::cuda_device::new_cuda_device(0).expect("cuda");
    let cpu = Device::Cpu;
    let x0 = Tensor::randn(0f32, 1.0, (2, 1, 3, 8), &cpu).unwrap();
    let w = Tensor::randn(1f32, 0.2, 8, &cpu).unwrap();
    let lin = Tensor::randn(0f32, 0.5, (5, 8), &cpu).unwrap();
    let inv: Vec<f64> = (0..4).map(|i| 1.0 / 10_000f64.powf(2.0 * i as f64 / 8.0)).collect();
    type F = Box<dyn Fn(&Tensor, &Device) -> Tensor>;
    let ops: Vec<(&str, F)> = vec![
        ("rms_norm", Box::new(move |x, d| rms_norm(x, &w.to_device(d).unwrap(), 1e-5).unwrap())),
        ("softmax", Box::new(|x, _| softmax_last(x).unwrap())),
        ("log_softmax", Box::new(|x, _| log_softmax_last(x).unwrap())),
        ("rope", Box::new(move |x, d| apply_rope(x, &RopeTables::new(&inv, &[vec![0, 1, 5], vec![2, 3, 4]], DType::F32, d).unwrap()).unwrap())),
        ("frozen_linear", Box::new(move |x, d| frozen_linear(x, &lin.to_device(d).unwrap()).unwrap())),
        ("max_keepdim_detach_sub", Box::new(|x, _| x.broadcast_sub(&x.max_keepdim(D::Minus1).unwrap().detach()).unwrap())),
        ("index_select_rows", Box::new(|x, d| {
            let rows = Tensor::new(&[0u32, 2, 5], d).unwrap();
            x.reshape((6, 8)).unwrap().index_select(&rows, 0).unwrap()
        })),
        ("index_add_rows", Box::new(|x, d| {
            let rows = Tensor::new(&[1u32, 4], d).unwrap();
            let flat = x.reshape((6, 8)).unwrap();
            let src = flat.index_select(&Tensor::new(&[0u32, 3], d).unwrap(), 0).unwrap().sqr().unwrap();
            flat.index_add(&rows, &src, 0).unwrap()
        })),
        ("gather", Box::new(|x, d| {
            let idx = Tensor::new(&[[1u32], [3], [0], [7], [2], [5]], d).unwrap();
            x.reshape((6, 8)).unwrap().gather(&idx, 1).unwrap()
        })),
        ("matmul_t", Box::new(|x, d| {
            let m = Tensor::arange(0f32, 32.0, d).unwrap().reshape((4, 8)).unwrap().cos().unwrap();
            x.reshape((6, 8)).unwrap().matmul(&m.t().unwrap()).unwrap()
        })),
        ("mean_all", Box::new(|x, _| x.mean_all().unwrap())),
        ("exp", Box::new(|x, _| x.exp().unwrap())),
        ("sum_keepdim_last", Box::new(|x, _| x.sum_keepdim(D::Minus1).unwrap())),
        ("broadcast_div_by_sum", Box::new(|x, _| x.broadcast_div(&(x.sqr().unwrap().sum_keepdim(D::Minus1).unwrap() + 1.0).unwrap()).unwrap())),
        ("div_by_const_keepdim", Box::new(|x, d| x.broadcast_div(&Tensor::new(&[[[[2f32]]]], d).unwrap()).unwrap())),
        ("sqr", Box::new(|x, _| x.sqr().unwrap())),
        ("mean_keepdim_last", Box::new(|x, _| x.mean_keepdim(D::Minus1).unwrap())),
        ("sqrt_recip", Box::new(|x, _| (x.sqr().unwrap() + 1.0).unwrap().sqrt().unwrap().recip().unwrap())),
        ("broadcast_mul_keepdim", Box::new(|x, _| x.broadcast_mul(&x.sum_keepdim(D::Minus1).unwrap()).unwrap())),
        ("log", Box::new(|x, _| (x.sqr().unwrap() + 1.0).unwrap().log().unwrap())),
    ];
    for (name, f) in &ops {
        let a = f(&x0, &cpu);
        let b = f(&x0.to_device(&cuda).unwrap(), &cuda);
        println!("fwd {name:<24} max rel diff {:.3e}", rel(&b, &a));
    }
    for (name, f) in &ops {
        let a = op_grad(&cpu, name, &x0, f.as_ref());
        let b = op_grad(&cuda, name, &x0, f.as_ref());
        println!("op {name:<24} max rel grad diff {:.3e}", rel(&b, &a));
    }
    // The whole tiny model, per parameter.
    let dir = std::env::temp_dir().join("reft-cuda-gradcheck");
    reft_core::testing::write_tiny_model(&dir, 7).unwrap();
    for (kind, comp) in [(Kind::Loreft, Component::BlockOutput), (Kind::Direft, Component::BlockOutput), (Kind::Loreft, Component::MlpOutput)] {
        let mut grads = vec![];
        for dev in [&cpu, &cuda] {
            let base = Arc::new(load_model(&dir, &LoadOptions { dtype: DType::F32, device: dev.clone() }).unwrap());
            let spec = InterventionSpec { kind, layer: 1, component: comp, rank: 3, dropout: 0.0, activation: Activation::Linear, add_bias: false };
            let mut m = ReftModel::new(base, &[spec], 3).unwrap();
            m.prefix_cache_bytes = 0;
            let (b, t) = (2, 10);
            let ids: Vec<u32> = (0..b * t).map(|i| ((i * 37 + 11) % 250) as u32).collect();
            let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < 5 { -100 } else { v as i64 }).collect();
            let batch = Batch { input_ids: ids, batch_size: b, seq_len: t, attention_mask: None, positions: Some(vec![2, 4, 1, 4]), num_positions: 2, labels: Some(labels), ..Default::default() };
            let (loss, _, g) = m.gradients(std::slice::from_ref(&batch)).unwrap();
            let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
            grads.push((loss, names, g));
        }
        println!("model {kind:?}/{comp:?}: loss cpu {} cuda {}", grads[0].0, grads[1].0);
        for (i, n) in grads[0].1.iter().enumerate() {
            println!("  {n:<40} max rel grad diff {:.3e}", rel(&grads[1].2[i], &grads[0].2[i]));
        }
    }
    // The loss graph on this thread vs the autograd thread that `gradients` uses.
    let base = Arc::new(load_model(&dir, &LoadOptions { dtype: DType::F32, device: cuda.clone() }).unwrap());
    let spec = InterventionSpec { kind: Kind::Direft, layer: 1, component: Component::BlockOutput, rank: 3, dropout: 0.0, activation: Activation::Linear, add_bias: false };
    let m = ReftModel::new(base, &[spec], 3).unwrap();
    let (b, t) = (2, 10);
    let ids: Vec<u32> = (0..b * t).map(|i| ((i * 37 + 11) % 250) as u32).collect();
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < 5 { -100 } else { v as i64 }).collect();
    let batch = Batch { input_ids: ids, batch_size: b, seq_len: t, attention_mask: None, positions: Some(vec![2, 4, 1, 4]), num_positions: 2, labels: Some(labels), ..Default::default() };
    let main_loss = m.loss_graph(&batch).unwrap().to_scalar::<f32>().unwrap();
    let fwd_loss = m.forward(&batch, false).unwrap().loss.unwrap();
    let thread_loss = std::thread::scope(|s| s.spawn(|| m.loss_graph(&batch).unwrap().to_scalar::<f32>().unwrap()).join().unwrap());
    println!("cuda loss: forward {fwd_loss}, loss_graph main thread {main_loss}, spawned thread {thread_loss}");
}
