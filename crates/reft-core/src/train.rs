//! One optimisation step: forward + backward over micro-batches (gradient accumulation), global
//! gradient-norm clipping, AdamW.
//!
//! AdamW follows `torch.optim.AdamW` (bias-corrected moments, `eps` outside the square root)
//! with decoupled weight decay `p ← p − lr·λ·p` applied to the intervention **weight matrices**
//! (`*.weight`: `W`, `W₂`) — not to biases, free vectors, or the rotation parameter (decaying
//! the Householder parameter would bend R arbitrarily). This differs on purpose from pyreft,
//! whose HF optimizer never applies decay to intervention parameters (REFERENCE.md §5.2): with
//! `weight_decay = 0` (the default, and the paper's setting for LoReFT) both agree.

use crate::adamw::{adamw_update, AdamwScalars};
use crate::batch::Batch;
use crate::error::{ReftError, Result};
use crate::reft::ReftModel;
use candle_core::{Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Step hyperparameters.
#[derive(Clone, Debug)]
pub struct StepOptions {
    pub lr: f64,
    pub weight_decay: f64,
    /// Global L2 clip; `<= 0` disables. Default 1.0 (pyvene ≥ 0.1.7 behaviour).
    pub max_grad_norm: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Per-layer activation recomputation (`recompute.rs`): far less memory, one more forward.
    /// Decoders only (ignored for encoders). Default false.
    pub recompute: bool,
}

impl Default for StepOptions {
    fn default() -> Self {
        Self { lr: 1e-3, weight_decay: 0.0, max_grad_norm: 1.0, beta1: 0.9, beta2: 0.999, eps: 1e-8, recompute: false }
    }
}

/// What one step reports.
#[derive(Clone, Debug)]
pub struct StepStats {
    pub loss: f64,
    pub grad_norm: f64,
    pub num_tokens: usize,
    pub step: u64,
}

/// AdamW moments, one pair per trainable tensor in `ReftModel::named_params` order.
#[derive(Default)]
pub struct AdamW {
    pub step: u64,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

/// Stack for the autograd thread: candle's graph walk and drop recurse once per node depth.
/// (wasm32-unknown-unknown has no threads: there the pass runs on the caller's stack, whose
/// size is set at link time, `-zstack-size` in .cargo/config.toml.)
#[cfg(not(target_arch = "wasm32"))]
const GRAD_STACK: usize = 512 * 1024 * 1024;

impl ReftModel {
    /// All trainable tensors with stable names `interventions.{i}.{param}`.
    pub fn named_params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (i, iv) in self.interventions.iter().enumerate() {
            for (n, v) in iv.params() {
                out.push((format!("interventions.{i}.{n}"), v));
            }
        }
        if let Some(head) = &self.head {
            for (n, v) in head.params() {
                out.push((format!("head.{n}"), v));
            }
        }
        out
    }

    /// Loss and gradients (summed over micro-batches, each scaled by `1/n`) without updating.
    pub fn gradients(&self, batches: &[Batch]) -> Result<(f64, usize, Vec<Tensor>)> {
        self.gradients_with(batches, false)
    }

    /// [`Self::gradients`], optionally by per-layer recomputation (decoders; see `recompute.rs`).
    pub fn gradients_with(&self, batches: &[Batch], recompute: bool) -> Result<(f64, usize, Vec<Tensor>)> {
        let recompute = recompute && self.head.is_none() && self.base.encoder().is_none();
        if batches.is_empty() {
            return Err(ReftError::config("micro_batches", "at least one batch is required"));
        }
        let params = self.named_params();
        let scale = 1.0 / batches.len() as f64;
        let mut sums: Vec<Option<Tensor>> = vec![None; params.len()];
        let (mut loss_sum, mut tokens) = (0f64, 0usize);
        for (k, batch) in batches.iter().enumerate() {
            #[cfg(target_arch = "wasm32")]
            let (loss, n, grads) = self.backward_one(batch, &params, k, recompute)?;
            #[cfg(not(target_arch = "wasm32"))]
            let (loss, n, grads) = std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(GRAD_STACK)
                    .spawn_scoped(s, || {
                        // This thread's CUDA work must be done before the caller's thread reads
                        // the gradients: with candle's per-thread streams nothing else orders
                        // them (`cuda_device.rs`). A no-op on the CPU.
                        let out = self.backward_one(batch, &params, k, recompute)?;
                        self.base.device().synchronize()?;
                        Ok::<_, ReftError>(out)
                    })
                    .map_err(|e| ReftError::io("<autograd thread>", e))?
                    .join()
                    .map_err(|_| ReftError::NonFinite("autograd thread panicked".into()))?
            })?;
            loss_sum += loss * scale;
            tokens += n;
            for (slot, g) in sums.iter_mut().zip(grads) {
                // One micro-batch: its gradients as they are (a kernel per parameter saved).
                let g = if batches.len() == 1 { g } else { (g * scale)? };
                *slot = Some(match slot.take() {
                    Some(acc) => (acc + g)?,
                    None => g,
                });
            }
        }
        let grads = sums.into_iter().map(|g| g.expect("filled above")).collect();
        Ok((loss_sum, tokens, grads))
    }

    fn backward_one(&self, batch: &Batch, params: &[(String, Var)], micro: usize, recompute: bool) -> Result<(f64, usize, Vec<Tensor>)> {
        // Dropout masks are a pure function of (seed, step, micro-batch): exact resume.
        let stream = self.dropout_seed ^ (self.optimizer.step.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ ((micro as u64) << 48);
        if self.loss_is_frozen(batch) {
            // No labelled token comes at or after its example's interventions (attention is
            // causal): the loss is a constant and its gradient exactly zero.
            let (loss, n) = self.frozen_loss(batch)?;
            let value = finite_loss(&loss)?;
            let zeros = params.iter().map(|(_, v)| v.as_tensor().zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
            return Ok((value, n, zeros));
        }
        if recompute {
            return self.backward_recompute(batch, params, stream);
        }
        let mut rng = StdRng::seed_from_u64(stream);
        let rng = if self.training { Some(&mut rng) } else { None };
        let g = self.hidden_for_grad(batch, rng)?;
        let (loss, n) = self.loss(&g.h, batch, g.offset, g.frozen_top.as_ref())?;
        drop(g);
        // The backward is queued before the loss is read: reading it waits for the device, which
        // would otherwise idle while the host walks the graph and launches the backward's first
        // kernels. A non-finite loss still fails the step, after a wasted backward.
        let store = loss.backward()?;
        let value = finite_loss(&loss)?;
        let mut grads = Vec::with_capacity(params.len());
        for (name, v) in params {
            let g = store.get(v.as_tensor()).ok_or_else(|| ReftError::NoGrad(name.clone()))?;
            grads.push(g.detach());
        }
        drop(store);
        drop(loss);
        Ok((value, n, grads))
    }

    /// Forward + backward on each micro-batch, clip, AdamW. Returns loss and pre-clip grad norm.
    pub fn train_step(&mut self, batches: &[Batch], opts: &StepOptions) -> Result<StepStats> {
        if !(opts.lr.is_finite() && opts.lr >= 0.0) {
            return Err(ReftError::config("lr", format!("{} is not a finite non-negative number", opts.lr)));
        }
        let (loss, num_tokens, grads) = self.gradients_with(batches, opts.recompute)?;
        let sq: f64 = squared_norms(&grads)?.into_iter().sum();
        let grad_norm = sq.sqrt();
        if !grad_norm.is_finite() {
            return Err(ReftError::NonFinite(format!("gradient norm is {grad_norm}")));
        }
        // torch.nn.utils.clip_grad_norm_: coefficient clamped to 1, applied inside the update.
        let coef = if opts.max_grad_norm > 0.0 { (opts.max_grad_norm / (grad_norm + 1e-6)).min(1.0) } else { 1.0 };
        let params = self.named_params();
        self.adamw_update(&params, &grads, opts, coef)?;
        // The update is queued on this thread's stream; the next call may come from another thread.
        self.base.device().synchronize()?;
        Ok(StepStats { loss, grad_norm, num_tokens, step: self.optimizer.step })
    }

    fn adamw_update(&mut self, params: &[(String, Var)], grads: &[Tensor], o: &StepOptions, gscale: f64) -> Result<()> {
        let opt = &mut self.optimizer;
        if opt.m.len() != params.len() {
            opt.m = params.iter().map(|(_, v)| v.zeros_like()).collect::<candle_core::Result<_>>()?;
            opt.v = params.iter().map(|(_, v)| v.zeros_like()).collect::<candle_core::Result<_>>()?;
        }
        opt.step += 1;
        let t = opt.step as i32;
        for (i, ((name, p), g)) in params.iter().zip(grads).enumerate() {
            let decay = if o.weight_decay > 0.0 && name.ends_with(".weight") { o.lr * o.weight_decay } else { 0.0 };
            let s = AdamwScalars::new(t, o.lr, o.beta1, o.beta2, o.eps, decay, gscale);
            let (m, v) = adamw_update(p, g, &opt.m[i], &opt.v[i], &s)?;
            opt.m[i] = m;
            opt.v[i] = v;
        }
        Ok(())
    }
}

/// The loss's value, or `ERR_NON_FINITE`.
pub(crate) fn finite_loss(loss: &Tensor) -> Result<f64> {
    let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    if !value.is_finite() {
        return Err(ReftError::NonFinite(format!("loss is {value}")));
    }
    Ok(value)
}

/// The squared L2 norm of each gradient, with one device-to-host copy for all (on a GPU, one
/// stream sync instead of one per parameter; with the fused kernels on, one kernel per
/// gradient instead of a square, a sum and a cast, then a concatenation).
fn squared_norms(grads: &[Tensor]) -> candle_core::Result<Vec<f64>> {
    #[cfg(feature = "cuda")]
    if crate::ops::fused_squared_norms_apply(grads) {
        return crate::ops::fused_squared_norms(grads);
    }
    let parts = grads.iter().map(|g| g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.reshape(1)).collect::<candle_core::Result<Vec<_>>>()?;
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    Tensor::cat(&parts, 0)?.to_vec1::<f64>()
}
