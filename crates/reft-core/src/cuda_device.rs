//! CUDA devices set up for this crate: freed GPU memory kept in the memory pool between
//! training steps.
//!
//! **Events stay on.** cudarc records a CUDA event for every tensor a kernel reads or writes;
//! turning that off would save host work per launch, but candle's device uses the *per-thread*
//! default stream, so work launched from two threads (a Node model is loaded and trained on
//! libuv's worker threads, step by step) lands on two streams, and those events are what order
//! them (e.g. one step's optimizer update before the next step's forward on another thread).
//!
//! **Memory pool.**
//! candle allocates through cudarc's stream-ordered allocator (`cuMemAllocAsync`) from the
//! device's memory pool, and nothing sets that pool's release threshold, whose default is 0. By
//! CUDA's documentation such a pool releases all of its unused memory to the driver at every
//! synchronisation (each step has at least two, the loss and the gradient norm), and the next
//! step maps it again, allocation by allocation. PyTorch's caching allocator keeps it instead. Here the threshold is
//! set to "never release" once per device, as NVIDIA's guide to the stream-ordered allocator
//! recommends for code that allocates the same sizes every iteration; `REFT_CUDA_POOL_KEEP=0`
//! leaves the default (for A/B runs on a GPU).

use candle_core::{Device, Result};

/// `Device::new_cuda(ordinal)` with [`keep_pool_memory`]; without the `cuda` feature, candle's
/// error for a missing CUDA build.
pub fn new_cuda_device(ordinal: usize) -> Result<Device> {
    let device = Device::new_cuda(ordinal)?;
    keep_pool_memory(&device)?;
    Ok(device)
}

/// Sets the device's current memory pool to keep freed memory (once per process and device;
/// a no-op on the CPU, without the `cuda` feature, where the device has no memory pools, or
/// with `REFT_CUDA_POOL_KEEP=0`). Best effort: this is about speed only, so a driver that
/// refuses the setting gets one warning on stderr and the model still loads.
pub fn keep_pool_memory(device: &Device) -> Result<()> {
    if !device.is_cuda() || std::env::var("REFT_CUDA_POOL_KEEP").map(|v| v == "0").unwrap_or(false) {
        return Ok(());
    }
    #[cfg(feature = "cuda")]
    {
        use std::collections::HashSet;
        use std::sync::Mutex;
        static DONE: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
        let ctx = device.as_cuda_device()?.cuda_stream().context().clone();
        // Without pools cudarc allocates synchronously (cuMemAlloc) and there is nothing to keep.
        if !ctx.has_async_alloc() {
            return Ok(());
        }
        let cu_device = ctx.cu_device();
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if done.get_or_insert_with(HashSet::new).insert(cu_device) {
            if let Err(e) = set_release_threshold(cu_device) {
                eprintln!("reft: warning: could not keep freed GPU memory in the pool ({e}); steps may run slower");
            }
        }
    }
    Ok(())
}

#[cfg(feature = "cuda")]
fn set_release_threshold(cu_device: i32) -> Result<()> {
    use candle_core::cuda_backend::cudarc::driver::sys;
    let w = |e: candle_core::cuda_backend::cudarc::driver::DriverError| candle_core::Error::Msg(format!("CUDA memory pool: {e}"));
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut keep: u64 = u64::MAX;
    // SAFETY: plain driver calls on a valid device ordinal with out-pointers to locals; the
    // attribute takes a u64 by pointer.
    unsafe {
        sys::cuDeviceGetMemPool(&mut pool, cu_device).result().map_err(w)?;
        sys::cuMemPoolSetAttribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut keep as *mut u64 as *mut std::ffi::c_void,
        )
        .result()
        .map_err(w)?;
    }
    Ok(())
}
