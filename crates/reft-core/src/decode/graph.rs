//! The static decoding step as a CUDA graph (`REFT_DECODE_GRAPH=1`, off until a GPU run has
//! measured it): captured on a generation's second decoding step and replayed after it, so a
//! step's ~180 launches cost one. The first step runs as launches, so that what cuBLAS does on
//! a handle's first GEMMs (loading kernels, picking algorithms) happens outside the capture,
//! where some CUDA versions would invalidate it. What a replay cannot change comes from device
//! memory: the cache position and the number of keys (`info`, read by `reft_qkv_rows_at` and
//! `reft_decode_attn_at`), with the key mask at the cache's capacity as its stride. The GEMMs run
//! on a cuBLAS handle with a workspace of its own, as capture requires (a handle without one may
//! allocate while capturing). A capture that fails leaves the same kernels running as launches.

use candle_core::cuda_backend::cudarc::cublas::{sys as blas, CudaBlas};
use candle_core::cuda_backend::cudarc::driver::{sys as drv, CudaGraph, CudaSlice, CudaStream, DevicePtr};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaDevice, Result};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// cuBLAS's recommended workspace on Hopper.
const WORKSPACE_BYTES: usize = 32 << 20;

/// A step's graph and what its replays read.
pub(super) struct Graphed {
    /// `[cache position, keys]`, uploaded every step.
    pub(super) info: CudaSlice<i32>,
    graph: Option<CudaGraph>,
    /// Capture failed once: the step runs as launches from then on.
    failed: bool,
    /// The step has run once as launches (the warm-up before the capture).
    warm: bool,
    _workspace: CudaSlice<u8>,
}

impl Graphed {
    /// The graph's state, the device pointer of `info`, and the cuBLAS handle for its GEMMs.
    pub(super) fn new(dev: &CudaDevice, stream: &Arc<CudaStream>) -> Result<(Self, u64, Arc<CudaBlas>)> {
        let blas = CudaBlas::new(stream.clone()).map_err(|e| candle_core::Error::Msg(format!("static decoding step: cuBLAS handle: {e:?}")))?;
        let workspace = dev.alloc_zeros::<u8>(WORKSPACE_BYTES)?;
        let ptr = workspace.device_ptr(stream).0;
        let status = unsafe { blas::cublasSetWorkspace_v2(*blas.handle(), ptr as *mut std::ffi::c_void, WORKSPACE_BYTES) };
        if status != blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            candle_core::bail!("static decoding step: cublasSetWorkspace: {status:?}");
        }
        let info = dev.alloc_zeros::<i32>(2)?;
        let info_ptr = info.device_ptr(stream).0;
        Ok((Self { info, graph: None, failed: false, warm: false, _workspace: workspace }, info_ptr, Arc::new(blas)))
    }

    /// Runs `step` (the step's launches on `stream`): as launches on the first call, then
    /// through the graph, captured on the second call and replayed on every call after it.
    pub(super) fn run(&mut self, stream: &Arc<CudaStream>, mut step: impl FnMut() -> Result<()>) -> Result<()> {
        if self.failed || !self.warm {
            self.warm = true;
            return step();
        }
        if self.graph.is_none() {
            stream.begin_capture(drv::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED).w()?;
            let launched = step();
            match (launched, stream.end_capture(drv::CUgraphInstantiate_flags(0))) {
                (Ok(()), Ok(Some(graph))) => self.graph = Some(graph),
                (launched, ended) => {
                    // Nothing captured ran: run the step as launches, now and from now on.
                    eprintln!("reft: the decoding step's CUDA graph capture failed ({:?}, {:?}); decoding without it", launched.err(), ended.err());
                    self.failed = true;
                    return step();
                }
            }
        }
        self.graph.as_ref().expect("captured above").launch().w()?;
        super::GRAPH_REPLAYS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
