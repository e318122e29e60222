//! Pins the CPU thread count once per process.
//!
//! candle 0.11 asks for its thread count on every matmul and CPU kernel launch. Unless
//! `RAYON_NUM_THREADS` (or `CANDLE_NUM_THREADS`) is set, that query falls through to
//! `num_cpus::get_physical()`, which opens and parses `/proc/cpuinfo` each time: about 450
//! reads a second during training here, 2–3% of a step spent in the kernel formatting text.
//! Setting `RAYON_NUM_THREADS` to the very value candle would have computed keeps its choice
//! and makes every later query an environment lookup.
//!
//! candle's element-wise kernels run on its own pool, whose idle worker spins 25,000 times
//! before it parks, while our GEMMs run on rayon's threads. On two cores that spinning worker
//! takes a core from the GEMM that follows each element-wise op. 2,000 spins still catch the
//! next op in a chain of small kernels; on the 2-core machine an all-layer training step got
//! about 7% faster (BENCHMARKS.md). `CANDLE_BARRIER_POOL_SPIN_LIMIT` set by the user wins.

use std::sync::Once;

static INIT: Once = Once::new();

/// Spins of candle's idle pool worker before it parks (candle's default: 25,000).
#[cfg(not(target_arch = "wasm32"))]
const POOL_SPIN_LIMIT: u32 = 2_000;

/// Sets `RAYON_NUM_THREADS` to candle's own default when neither it nor `CANDLE_NUM_THREADS`
/// is set, and candle's pool spin limit when it is unset. Idempotent; a no-op on WebAssembly (one thread). Called by the model loaders, before
/// any compute.
pub fn pin_thread_count() {
    #[cfg(not(target_arch = "wasm32"))]
    INIT.call_once(|| {
        // Runs once, at model load, before this library starts any thread of its own.
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
            std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", POOL_SPIN_LIMIT.to_string());
        }
        let set = |k: &str| std::env::var(k).map(|v| v.parse::<usize>().map(|n| n > 0).unwrap_or(false)).unwrap_or(false);
        if set("RAYON_NUM_THREADS") || set("CANDLE_NUM_THREADS") {
            return;
        }
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    });
    #[cfg(target_arch = "wasm32")]
    INIT.call_once(|| {});
}

/// The number of threads candle's CPU kernels use.
pub fn thread_count() -> usize {
    candle_core::utils::get_num_threads()
}
