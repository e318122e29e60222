//! Frozen-weight GEMMs on the anchor models' shapes (issue 6): candle's cuBLAS path against
//! cuBLASLt (`REFT_GEMM_LT`, `ops::set_gemm_lt`), the forward `x·Wᵀ` and the backward `g·W`, in
//! bf16 on CUDA. One JSON line per shape and direction: both median times, TFLOP/s and the
//! largest difference between the two results relative to the largest value.
//! `benches/gemm_bench.py` times PyTorch on the same shapes in the same session
//! (`scripts/gpu-session.sh`). Needs the CUDA build (`scripts/build-cuda.sh`).

use candle_core::{DType, Tensor};
use reft_core::ops::{frozen_linear, frozen_linear_vjp};
use std::time::Instant;

/// `[name, rows m, outputs n, inputs k]`: 7B and 1.1B at 4,096 tokens, and 1.1B decoding (8
/// rows); `benches/gemm_bench.py` reads the same file.
const SHAPES: &str = include_str!("../../../benches/gemm_shapes.json");

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let reps: usize = std::env::args().skip_while(|a| a != "--reps").nth(1).and_then(|v| v.parse().ok()).unwrap_or(20);
    let dev = match reft_core::cuda_device::new_cuda_device(0) {
        Ok(d) if d.is_cuda() => d,
        _ => {
            eprintln!("gemm_bench: no CUDA device (build with --features cuda; scripts/build-cuda.sh)");
            std::process::exit(2);
        }
    };
    let shapes: Vec<(String, usize, usize, usize)> = serde_json::from_str(SHAPES).map_err(|e| candle_core::Error::Msg(format!("gemm_shapes.json: {e}")))?;
    for (name, m, n, k) in shapes {
        let x = (Tensor::randn(0f32, 1.0, (m, k), &dev)?).to_dtype(DType::BF16)?;
        let w = (Tensor::randn(0f32, 0.02, (n, k), &dev)?).to_dtype(DType::BF16)?;
        let g = (Tensor::randn(0f32, 1.0, (m, n), &dev)?).to_dtype(DType::BF16)?;
        for backward in [false, true] {
            let run = || if backward { frozen_linear_vjp(&g, &w) } else { frozen_linear(&x, &w) };
            let mut times = [0f64; 2];
            let mut outs = Vec::new();
            for (i, lt) in [false, true].into_iter().enumerate() {
                reft_core::ops::set_gemm_lt(lt);
                let y = run()?;
                dev.synchronize()?;
                times[i] = median(
                    (0..reps)
                        .map(|_| {
                            let t0 = Instant::now();
                            let y = run();
                            dev.synchronize().and(y).map(|_| t0.elapsed().as_secs_f64()).unwrap_or(f64::NAN)
                        })
                        .collect(),
                );
                outs.push(y.to_dtype(DType::F32)?);
            }
            reft_core::ops::set_gemm_lt(false);
            let scale = outs[0].abs()?.max_all()?.to_scalar::<f32>()?.max(1e-30);
            let diff = (&outs[0] - &outs[1])?.abs()?.max_all()?.to_scalar::<f32>()? / scale;
            let flop = 2.0 * (m * n * k) as f64;
            println!(
                "{{\"shape\":\"{name}\",\"m\":{m},\"n\":{n},\"k\":{k},\"dir\":\"{}\",\"candle_ms\":{:.4},\"lt_ms\":{:.4},\"candle_tflops\":{:.1},\"lt_tflops\":{:.1},\"rel_diff\":{diff:.2e}}}",
                if backward { "backward" } else { "forward" },
                times[0] * 1e3,
                times[1] * 1e3,
                flop / times[0] / 1e12,
                flop / times[1] / 1e12,
            );
        }
    }
    Ok(())
}
