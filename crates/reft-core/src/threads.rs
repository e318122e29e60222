//! Pins the CPU thread count once per process.
//!
//! candle 0.11 asks for its thread count on every matmul and CPU kernel launch. Unless
//! `RAYON_NUM_THREADS` (or `CANDLE_NUM_THREADS`) is set, that query falls through to
//! `num_cpus::get_physical()`, which opens and parses `/proc/cpuinfo` each time: about 450
//! reads a second during training here, 2–3% of a step spent in the kernel formatting text.
//! Setting `RAYON_NUM_THREADS` to the very value candle would have computed keeps its choice
//! and makes every later query an environment lookup.

use std::sync::Once;

static INIT: Once = Once::new();

/// Sets `RAYON_NUM_THREADS` to candle's own default when neither it nor `CANDLE_NUM_THREADS`
/// is set. Idempotent; a no-op on WebAssembly (one thread). Called by the model loaders, before
/// any compute.
pub fn pin_thread_count() {
    #[cfg(not(target_arch = "wasm32"))]
    INIT.call_once(|| {
        let set = |k: &str| std::env::var(k).map(|v| v.parse::<usize>().map(|n| n > 0).unwrap_or(false)).unwrap_or(false);
        if set("RAYON_NUM_THREADS") || set("CANDLE_NUM_THREADS") {
            return;
        }
        let n = candle_core::utils::get_num_threads();
        // Runs once, at model load, before this library starts any thread of its own.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    });
    #[cfg(target_arch = "wasm32")]
    INIT.call_once(|| {});
}

/// The number of threads candle's CPU kernels use.
pub fn thread_count() -> usize {
    candle_core::utils::get_num_threads()
}
