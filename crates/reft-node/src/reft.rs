//! `NativeReft`: a base model with interventions. Every call slower than a millisecond is an
//! `AsyncTask` (libuv pool) that holds only the shared core handle; `dispose()` drops it.

use crate::error::{coded, disposed, guard, IntoNapi};
use crate::model::NativeModel;
use crate::options::{BatchObject, GenerateOptionsObject, InterventionSpecObject, StepOptionsObject};
use napi::bindgen_prelude::{AsyncTask, Float32Array, Uint32Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Task};
use napi_derive::napi;
use reft_core::generate::GenerateOptions;
use reft_core::train::{StepOptions, StepStats};
use reft_core::{Batch, ReftModel};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type Shared = Arc<Mutex<ReftModel>>;

fn lock(m: &Shared) -> napi::Result<MutexGuard<'_, ReftModel>> {
    m.lock().map_err(|_| coded("ERR_BACKEND", "an earlier call panicked while holding this adapter"))
}

#[napi(object)]
pub struct ForwardOutput {
    /// `[batchSize, seqLen, vocab]` logits (`[batchSize, numLabels]` with a head; the last
    /// hidden state `[batchSize, seqLen, hidden]` for an encoder without one), empty when not
    /// requested.
    pub logits: Float32Array,
    pub dims: Vec<u32>,
    pub loss: Option<f64>,
    pub num_tokens: u32,
}

#[napi(object)]
pub struct StepStatsObject {
    pub loss: f64,
    pub grad_norm: f64,
    pub num_tokens: u32,
    pub step: u32,
}

#[napi(object)]
pub struct TrainableParameters {
    pub intervention_params: f64,
    /// Trainable values of the classification head (0 without one).
    pub head_params: f64,
    pub model_params: f64,
}

/// A classification (numLabels ≥ 2) or regression (numLabels = 1) head for encoders.
#[napi(object)]
pub struct HeadObject {
    pub num_labels: u32,
    /// Train the dense layer too (default: yes, except a BERT's pretrained pooler).
    pub train_dense: Option<bool>,
}

/// The head of an adapter, as created.
#[napi(object)]
pub struct HeadInfo {
    pub num_labels: u32,
    pub train_dense: bool,
}

/// A base model with interventions.
#[napi]
pub struct NativeReft {
    inner: Option<Shared>,
    /// One flag per running `generate`, so aborting or starting one call never affects another.
    running: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl NativeReft {
    fn get(&self) -> napi::Result<Shared> {
        self.inner.clone().ok_or_else(|| disposed("adapter"))
    }

    pub(crate) fn wrap(m: ReftModel) -> Self {
        Self { inner: Some(Arc::new(Mutex::new(m))), running: Arc::new(Mutex::new(Vec::new())) }
    }
}

#[napi]
impl NativeReft {
    /// Intervention specs in config order.
    #[napi]
    pub fn specs(&self) -> napi::Result<Vec<InterventionSpecObject>> {
        let m = self.get()?;
        let g = lock(&m)?;
        Ok(g.interventions.iter().map(|iv| iv.spec().into()).collect())
    }

    #[napi(ts_return_type = "Promise<ForwardOutput>")]
    pub fn forward(&self, batch: BatchObject, want_logits: bool) -> napi::Result<AsyncTask<ForwardTask>> {
        Ok(AsyncTask::new(ForwardTask { model: self.get()?, batch: (&batch).into(), want_logits }))
    }

    #[napi(ts_return_type = "Promise<StepStatsObject>")]
    pub fn train_step(&self, micro_batches: Vec<BatchObject>, options: StepOptionsObject) -> napi::Result<AsyncTask<TrainStepTask>> {
        let batches = micro_batches.iter().map(Batch::from).collect();
        Ok(AsyncTask::new(TrainStepTask { model: self.get()?, batches, opts: (&options).into() }))
    }

    /// New tokens per row for left-padded prompts; `onToken` receives each step's tokens.
    #[napi(ts_return_type = "Promise<Uint32Array[]>")]
    pub fn generate(
        &self,
        prompts: BatchObject,
        options: GenerateOptionsObject,
        #[napi(ts_arg_type = "((tokens: number[]) => void) | undefined | null")] on_token: Option<ThreadsafeFunction<Vec<u32>, (), Vec<u32>, Status, false>>,
    ) -> napi::Result<AsyncTask<GenerateTask>> {
        let abort = Arc::new(AtomicBool::new(false));
        if let Ok(mut list) = self.running.lock() {
            list.retain(|f| Arc::strong_count(f) > 1);
            list.push(abort.clone());
        }
        Ok(AsyncTask::new(GenerateTask { model: self.get()?, batch: (&prompts).into(), opts: (&options).into(), on_token, abort }))
    }

    /// Caller-owned JSON stored in the checkpoint (`null` when none).
    #[napi]
    pub fn metadata(&self) -> napi::Result<Option<String>> {
        let m = self.get()?;
        let g = lock(&m)?;
        Ok(g.metadata.as_ref().map(|v| v.to_string()))
    }

    #[napi]
    pub fn set_metadata(&self, json: String) -> napi::Result<()> {
        let v: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| coded("ERR_INVALID_CONFIG", format!("invalid config: metadata: not JSON: {e}")))?;
        let m = self.get()?;
        lock(&m)?.metadata = Some(v);
        Ok(())
    }

    /// Stops every running `generate` of this adapter after its current token.
    #[napi]
    pub fn abort(&self) {
        if let Ok(list) = self.running.lock() {
            list.iter().for_each(|f| f.store(true, Ordering::SeqCst));
        }
    }

    /// Dropout on (true) or off (false). New adapters start in eval mode.
    #[napi]
    pub fn set_training(&self, training: bool) -> napi::Result<()> {
        let m = self.get()?;
        lock(&m)?.training = training;
        Ok(())
    }

    #[napi]
    pub fn trainable_parameters(&self) -> napi::Result<TrainableParameters> {
        let m = self.get()?;
        let g = lock(&m)?;
        Ok(TrainableParameters {
            intervention_params: g.num_trainable() as f64,
            head_params: g.head.as_ref().map(|h| h.num_trainable()).unwrap_or(0) as f64,
            model_params: g.base.num_parameters() as f64,
        })
    }

    /// The classification head, if any.
    #[napi]
    pub fn head(&self) -> napi::Result<Option<HeadInfo>> {
        let m = self.get()?;
        let g = lock(&m)?;
        Ok(g.head.as_ref().map(|h| HeadInfo { num_labels: h.spec.num_labels as u32, train_dense: h.train_dense }))
    }

    /// Writes our checkpoint format (atomically); `withOptimizer` adds the AdamW state.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save(&self, dir: String, with_optimizer: bool) -> napi::Result<AsyncTask<SaveTask>> {
        Ok(AsyncTask::new(SaveTask { model: self.get()?, dir: dir.into(), with_optimizer }))
    }

    #[napi]
    pub fn dispose(&mut self) {
        self.abort();
        self.inner = None;
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }
}

pub struct ForwardTask {
    model: Shared,
    batch: Batch,
    want_logits: bool,
}

impl Task for ForwardTask {
    type Output = (Vec<f32>, Vec<u32>, Option<f64>, u32);
    type JsValue = ForwardOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(|| {
            let m = lock(&self.model)?;
            let out = m.forward(&self.batch, self.want_logits).napi()?;
            let (logits, dims) = match out.logits {
                Some(t) => {
                    let dims = t.dims().iter().map(|&d| d as u32).collect();
                    let v = t.flatten_all().and_then(|t| t.to_dtype(candle_core::DType::F32)).and_then(|t| t.to_vec1()).map_err(|e| coded("ERR_BACKEND", e))?;
                    (v, dims)
                }
                None => (vec![], vec![]),
            };
            Ok((logits, dims, out.loss, out.num_tokens as u32))
        })
    }

    fn resolve(&mut self, _env: Env, (logits, dims, loss, num_tokens): Self::Output) -> napi::Result<Self::JsValue> {
        Ok(ForwardOutput { logits: Float32Array::new(logits), dims, loss, num_tokens })
    }
}

pub struct TrainStepTask {
    model: Shared,
    batches: Vec<Batch>,
    opts: StepOptions,
}

impl Task for TrainStepTask {
    type Output = StepStats;
    type JsValue = StepStatsObject;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(|| lock(&self.model)?.train_step(&self.batches, &self.opts).napi())
    }

    fn resolve(&mut self, _env: Env, s: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(StepStatsObject { loss: s.loss, grad_norm: s.grad_norm, num_tokens: s.num_tokens as u32, step: s.step as u32 })
    }
}

pub struct GenerateTask {
    model: Shared,
    batch: Batch,
    opts: GenerateOptions,
    on_token: Option<ThreadsafeFunction<Vec<u32>, (), Vec<u32>, Status, false>>,
    abort: Arc<AtomicBool>,
}

impl Task for GenerateTask {
    type Output = Vec<Vec<u32>>;
    type JsValue = Vec<Uint32Array>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(|| {
            let m = lock(&self.model)?;
            let abort = self.abort.clone();
            let cb = self.on_token.as_ref();
            let out = m
                .generate(&self.batch, &self.opts, &mut |tokens| {
                    if let Some(cb) = cb {
                        cb.call(tokens.to_vec(), ThreadsafeFunctionCallMode::NonBlocking);
                    }
                    !abort.load(Ordering::SeqCst)
                })
                .napi()?;
            if self.abort.load(Ordering::SeqCst) {
                return Err(coded("ERR_ABORTED", "aborted"));
            }
            Ok(out)
        })
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(out.into_iter().map(Uint32Array::new).collect())
    }
}

pub struct SaveTask {
    model: Shared,
    dir: PathBuf,
    with_optimizer: bool,
}

impl Task for SaveTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guard(|| lock(&self.model)?.save(&self.dir, self.with_optimizer).napi())
    }

    fn resolve(&mut self, _env: Env, _: ()) -> napi::Result<()> {
        Ok(())
    }
}

pub struct LoadReftTask {
    model: Arc<reft_core::models::Model>,
    dir: PathBuf,
    with_optimizer: bool,
}

impl Task for LoadReftTask {
    type Output = ReftModel;
    type JsValue = NativeReft;

    fn compute(&mut self) -> napi::Result<ReftModel> {
        guard(|| {
            if reft_core::checkpoint::is_checkpoint(&self.dir) {
                ReftModel::load(self.model.clone(), &self.dir, self.with_optimizer).napi()
            } else if reft_core::pyreft_import::is_pyreft_dir(&self.dir) {
                reft_core::pyreft_import::load_pyreft(self.model.clone(), &self.dir).napi()
            } else {
                Err(coded(
                    "ERR_IO",
                    format!("{} holds neither a reft checkpoint (reft_config.json) nor a pyreft adapter (config.json + intkey_*.bin)", self.dir.display()),
                ))
            }
        })
    }

    fn resolve(&mut self, _env: Env, m: ReftModel) -> napi::Result<NativeReft> {
        Ok(NativeReft::wrap(m))
    }
}

/// Fresh interventions on `model` (initialised from `seed`), with a head for encoders.
#[napi]
pub fn create_reft(model: &NativeModel, specs: Vec<InterventionSpecObject>, seed: u32, head: Option<HeadObject>) -> napi::Result<NativeReft> {
    let base = model.get()?;
    let specs = specs.iter().map(reft_core::interventions::InterventionSpec::try_from).collect::<napi::Result<Vec<_>>>()?;
    let head = head.map(|h| reft_core::head::HeadSpec { num_labels: h.num_labels as usize, train_dense: h.train_dense });
    guard(|| Ok(NativeReft::wrap(ReftModel::with_head(base, &specs, head, seed as u64).napi()?)))
}

/// Loads our checkpoint or a pyreft-saved directory onto `model`.
#[napi(ts_return_type = "Promise<NativeReft>")]
pub fn load_reft(model: &NativeModel, dir: String, with_optimizer: bool) -> napi::Result<AsyncTask<LoadReftTask>> {
    Ok(AsyncTask::new(LoadReftTask { model: model.get()?, dir: dir.into(), with_optimizer }))
}
