//! GEMM throughput of candle's CPU matmul on SmolLM2's projection shapes, with the frozen weight
//! as a transposed view (as `ops::frozen_linear` passes it) and as a contiguous copy: the layout
//! matters once gemm's AVX-512 kernels run (the `x86-v4` feature): the transposed view, which the
//! forward passes, is 8–36% slower than a contiguous copy on these shapes (median of 31).
//! `cargo run --release -p reft-core --example mm_layout`.

use candle_core::{Device, Tensor};
use std::time::Instant;
fn main() {
    reft_core::threads::pin_thread_count();
    let dev = Device::Cpu;
    for (m, k, n) in [(256, 576, 1536), (256, 1536, 576), (256, 576, 576), (256, 576, 192), (124, 576, 49152)] {
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let wt = w.t().unwrap().contiguous().unwrap();
        let mut a = vec![]; let mut b = vec![];
        for _ in 0..31 {
            let t0 = Instant::now(); let _ = x.matmul(&w.t().unwrap()).unwrap(); a.push(t0.elapsed().as_secs_f64());
            let t0 = Instant::now(); let _ = x.matmul(&wt).unwrap(); b.push(t0.elapsed().as_secs_f64());
        }
        a.sort_by(|p, q| p.partial_cmp(q).unwrap()); b.sort_by(|p, q| p.partial_cmp(q).unwrap());
        let gf = 2.0 * (m * k * n) as f64 / 1e9;
        println!("{m}x{k}x{n}: W.t() view {:.2} ms ({:.0} GF/s), contiguous Wt {:.2} ms ({:.0} GF/s)", a[15]*1e3, gf/a[15], b[15]*1e3, gf/b[15]);
    }
}
