//! CUDA devices set up for this crate: one stream for every thread, no per-tensor event
//! tracking, and freed GPU memory kept in the memory pool between training steps.
//!
//! **One stream.** candle's `Device::new_cuda` launches on the *per-thread* default stream, so
//! work queued from two threads lands on two streams that do not wait for each other; and
//! cudarc, which would order them with events, only does so once a context has streams of its
//! own, which a per-thread device never creates. A training step runs its forward and backward
//! on a thread of its own (`train.rs`, for the stack), and Node runs each call on one of libuv's
//! worker threads, so the gradient norm could read gradients still being written, and a step
//! could read intervention weights that the last optimizer update was still writing. Here the
//! device gets a stream of its own that all threads share (`CudaDevice::new_with_stream`): work
//! runs in the order it is queued, and the threads already queue it in program order (each joins
//! or returns before the next begins). `train.rs` and the loaders also synchronise at their
//! ends, for devices made with candle's constructor.
//!
//! **No events.** On that one stream the events cudarc records for every tensor a kernel reads or
//! writes order nothing, and cost host work on every launch (decoding launches hundreds of small
//! kernels per token), so tracking is off; `REFT_CUDA_EVENTS=1` keeps it (for A/B runs on a GPU).
//!
//! **Memory pool.**
//! candle allocates through cudarc's stream-ordered allocator (`cuMemAllocAsync`) from the
//! device's memory pool, and nothing sets that pool's release threshold, whose default is 0. By
//! CUDA's documentation such a pool releases all of its unused memory to the driver at every
//! synchronisation (each step has at least two, the loss and the gradient norm), and the next
//! step maps it again, allocation by allocation. PyTorch's caching allocator keeps it instead.
//! Here the threshold is set to "never release" once per device, as NVIDIA's guide to the
//! stream-ordered allocator recommends for code that allocates the same sizes every iteration;
//! `REFT_CUDA_POOL_KEEP=0` leaves the default (for A/B runs on a GPU).

use candle_core::{Device, Result};

/// A CUDA device on a stream of its own, without event tracking (unless `REFT_CUDA_EVENTS=1`),
/// with [`keep_pool_memory`]; `REFT_CUDA_STREAM=per-thread` gives candle's per-thread-stream
/// device instead. Without the `cuda` feature, candle's error for a missing CUDA build.
pub fn new_cuda_device(ordinal: usize) -> Result<Device> {
    // `REFT_CUDA_STREAM=per-thread`: candle's own constructor, for A/B runs on a GPU.
    let per_thread = std::env::var("REFT_CUDA_STREAM").map(|v| v == "per-thread").unwrap_or(false);
    #[cfg(feature = "cuda")]
    let device = if per_thread {
        Device::new_cuda(ordinal)?
    } else {
        let dev = candle_core::CudaDevice::new_with_stream(ordinal)?;
        if std::env::var("REFT_CUDA_EVENTS").map(|v| v != "1").unwrap_or(true) {
            // SAFETY: no tensor exists on this device yet, and every kernel, copy and free of it
            // goes to its one stream (module header).
            unsafe { dev.disable_event_tracking() };
        }
        Device::Cuda(dev)
    };
    #[cfg(not(feature = "cuda"))]
    let device = {
        let _ = per_thread;
        Device::new_cuda(ordinal)?
    };
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
