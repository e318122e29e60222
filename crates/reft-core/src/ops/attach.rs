//! Ops computed outside the graph and attached to it with a backward we write: the lean path of
//! RMSNorm, RoPE, SwiGLU and the attention softmax on every device and dtype that has no
//! native kernel here (CUDA, and half precision on the CPU).
//!
//! Built from primitives inside the graph, each of those ops keeps every intermediate alive until
//! the backward: the attention softmax alone holds five f32 copies of the `[b, h, q, k]` scores
//! (cast, scaled, masked, exponentials, probabilities). Here the forward runs on detached inputs,
//! so its intermediates are freed at once, and one custom op hands the result to the graph. The
//! graph then keeps only the op's inputs and its output, and the backward is the op's closed
//! form (`attention_softmax.rs`, `norm.rs`, `rope.rs`, `swiglu.rs`), proved against finite
//! differences in `tests/gradcheck.rs`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CudaStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor};
use std::sync::Mutex;

/// The dtype the lean ops compute in: f32 for half precision, f64 and f32 as they are.
pub(crate) fn widen(t: &Tensor) -> Result<Tensor> {
    match t.dtype() {
        DType::F64 | DType::F32 => Ok(t.clone()),
        _ => t.to_dtype(DType::F32),
    }
}

type Back1 = Box<dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Option<Tensor>> + Send + Sync>;
type Back2 = Box<dyn Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync>;
type Grads3 = (Option<Tensor>, Option<Tensor>, Option<Tensor>);
type Back3 = Box<dyn Fn(&Tensor, &Tensor, &Tensor, &Tensor, &Tensor) -> Result<Grads3> + Send + Sync>;

/// The precomputed output, taken (not cloned) by the forward so that the graph node does not
/// keep a second copy alive.
struct Value(Mutex<Option<Tensor>>);

impl Value {
    fn new(t: Tensor) -> Result<Self> {
        let (contiguous, offset) = {
            let l = t.layout();
            (l.is_contiguous(), l.start_offset())
        };
        let t = if contiguous && offset == 0 { t } else { t.copy()? };
        Ok(Self(Mutex::new(Some(t))))
    }

    fn take(&self, name: &str) -> Result<Tensor> {
        match self.0.lock().ok().and_then(|mut v| v.take()) {
            Some(t) => Ok(t),
            None => candle_core::bail!("{name}: the attached value was already handed over"),
        }
    }

    fn cpu(&self, name: &str) -> Result<(CpuStorage, Shape)> {
        let t = self.take(name)?;
        let (s, _) = t.storage_and_layout();
        match &*s {
            Storage::Cpu(c) => Ok((c.clone(), t.shape().clone())),
            _ => candle_core::bail!("{name}: the attached value is not on the CPU"),
        }
    }

    fn cuda(&self, name: &str) -> Result<(CudaStorage, Shape)> {
        let t = self.take(name)?;
        let (s, l) = t.storage_and_layout();
        match &*s {
            Storage::Cuda(c) => Ok((c.try_clone(l)?, t.shape().clone())),
            _ => candle_core::bail!("{name}: the attached value is not on the CUDA device"),
        }
    }
}

struct Attach1 {
    name: &'static str,
    value: Value,
    back: Back1,
}

impl CustomOp1 for Attach1 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.cpu(self.name)
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout) -> Result<(CudaStorage, Shape)> {
        self.value.cuda(self.name)
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        super::trace::traced(self.name, grad, || (self.back)(arg, res, grad))
    }
}

struct Attach2 {
    name: &'static str,
    value: Value,
    back: Back2,
}

impl CustomOp2 for Attach2 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.cpu(self.name)
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout, _: &CudaStorage, _: &Layout) -> Result<(CudaStorage, Shape)> {
        self.value.cuda(self.name)
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        super::trace::traced(self.name, grad, || (self.back)(a, b, res, grad))
    }
}

struct Attach3 {
    name: &'static str,
    value: Value,
    back: Back3,
}

impl CustomOp3 for Attach3 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.cpu(self.name)
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout, _: &CudaStorage, _: &Layout, _: &CudaStorage, _: &Layout) -> Result<(CudaStorage, Shape)> {
        self.value.cuda(self.name)
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, c: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Grads3> {
        super::trace::traced(self.name, grad, || (self.back)(a, b, c, res, grad))
    }
}

/// `value` (computed from `arg.detach()`) as a function of `arg` whose backward is
/// `back(arg, value, grad)`. Without a graph on `arg` it is `value` itself.
pub(crate) fn attach1(
    name: &'static str,
    arg: &Tensor,
    value: Tensor,
    back: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Option<Tensor>> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !arg.track_op() {
        return Ok(value);
    }
    arg.apply_op1(Attach1 { name, value: Value::new(value)?, back: Box::new(back) })
}

/// [`attach1`] for a function of two tensors; `back(a, b, value, grad)`.
pub(crate) fn attach2(
    name: &'static str,
    a: &Tensor,
    b: &Tensor,
    value: Tensor,
    back: impl Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !a.track_op() && !b.track_op() {
        return Ok(value);
    }
    a.apply_op2(b, Attach2 { name, value: Value::new(value)?, back: Box::new(back) })
}

/// [`attach1`] for a function of three tensors; `back(a, b, c, value, grad)`.
pub(crate) fn attach3(
    name: &'static str,
    (a, b, c): (&Tensor, &Tensor, &Tensor),
    value: Tensor,
    back: impl Fn(&Tensor, &Tensor, &Tensor, &Tensor, &Tensor) -> Result<Grads3> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !a.track_op() && !b.track_op() && !c.track_op() {
        return Ok(value);
    }
    a.apply_op3(b, c, Attach3 { name, value: Value::new(value)?, back: Box::new(back) })
}
