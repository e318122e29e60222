//! Time of the attention products (`q·kᵀ`, then `p·v`) with candle's matmul and with
//! `ops::batched_matmul`, forward only, on the shapes of this project's two CPU models.
//! `cargo run --release -p reft-core --example attention_matmul` prints one JSON line per shape.

use candle_core::{Device, Tensor};
use reft_core::ops::batched_matmul;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(reps: usize, f: &dyn Fn() -> Tensor) -> f64 {
    f();
    median((0..reps).map(|_| { let t0 = Instant::now(); f(); t0.elapsed().as_secs_f64() }).collect())
}

fn main() {
    reft_core::threads::pin_thread_count();
    let dev = Device::Cpu;
    // (name, batch, heads, tokens, head_dim)
    for (name, b, h, t, d) in [("minilm_rte_32x220", 32, 12, 220, 32), ("minilm_sst2_32x64", 32, 12, 64, 32), ("smollm2_bench_4x64", 4, 9, 64, 64), ("smollm2_2x512", 2, 9, 512, 64)] {
        let q = Tensor::randn(0f32, 1.0, (b, h, t, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (b, h, t, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (b, h, t, d), &dev).unwrap();
        let candle = time(9, &|| {
            let s = q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap();
            s.matmul(&v).unwrap()
        });
        let ours = time(9, &|| {
            let s = batched_matmul(&q, &k.t().unwrap()).unwrap();
            batched_matmul(&s, &v).unwrap()
        });
        println!("{{\"shape\":\"{name}\",\"candle_ms\":{:.2},\"batched_ms\":{:.2},\"speedup\":{:.2}}}", candle * 1e3, ours * 1e3, candle / ours);
    }
}
