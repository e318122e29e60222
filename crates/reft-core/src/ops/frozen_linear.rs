//! `y = x·Wᵀ (+ b)` for a frozen weight, whose backward yields only the input gradient.
//!
//! Candle's `Op::Matmul` backward always computes the gradient of both operands, so every
//! frozen projection above an intervention would cost a second GEMM and a weight-sized dead
//! buffer in the `GradStore`. This custom op runs the forward GEMM on the backend storage and
//! returns `∂L/∂x = g·W` in its backward, nothing else.

use candle_core::backend::BackendStorage;
use super::skinny_matmul::{skinny_matmul, ROWS};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor};

/// A frozen linear layer: weight `[out, in]` and optional bias `[out]`.
#[derive(Clone, Debug)]
pub struct FrozenLinear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl FrozenLinear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight: cpu_layout(weight), bias }
    }

    /// Applies the layer to `[..., in]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        frozen_affine(xs, &self.weight, self.bias.as_ref())
    }

    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }
}

/// The storage layout of a frozen weight on the CPU; the tensor stays `[out, in]` either way.
///
/// gemm's AVX-512 kernels run `x·Wᵀ` as much as a third slower when `Wᵀ` is a transposed view
/// than when it is a contiguous `[in, out]` matrix, and only when the inner dimension is the
/// larger one (`examples/mm_layout.rs`). The forward multiplies over `in`, the backward (`g·W`)
/// over `out`, so a weight with more inputs than outputs (Llama's down projection, BERT's
/// output dense) is stored as a contiguous `[in, out]` copy seen through `.t()`: its forward
/// gets the fast layout and its backward the view, which costs little at the smaller inner size.
/// GPUs read either layout at the same speed, so they keep the weight as loaded.
fn cpu_layout(weight: Tensor) -> Tensor {
    let wide = matches!(weight.dims2(), Ok((out, inp)) if inp > out);
    if !wide || !weight.device().is_cpu() || !weight.is_contiguous() {
        return weight;
    }
    match weight.t().and_then(|t| t.contiguous()).and_then(|t| t.t()) {
        Ok(w) => w,
        Err(_) => weight,
    }
}

struct FrozenMatmul {
    weight: Tensor,
    /// Added inside the op: as a graph node of its own, candle's backward of the broadcast add
    /// would fill and accumulate a dead `[tokens, out]` gradient for the constant bias, plus a
    /// zeroed copy for the product, on every biased projection (BERT has six per layer).
    bias: Option<Tensor>,
}

impl FrozenMatmul {
    fn dims(&self, layout: &Layout) -> Result<(usize, usize, usize, Shape)> {
        let dims = layout.dims();
        let k = *dims.last().ok_or_else(|| candle_core::Error::Msg("frozen_linear on a scalar".into()))?;
        let (n, wk) = self.weight.dims2()?;
        if wk != k {
            candle_core::bail!("frozen_linear: input has {k} features, weight expects {wk}");
        }
        let m = layout.shape().elem_count() / k.max(1);
        let mut out = dims.to_vec();
        *out.last_mut().unwrap_or(&mut 0) = n;
        Ok((m, n, k, Shape::from(out)))
    }
}

macro_rules! frozen_fwd {
    ($self:ident, $storage:ident, $layout:ident, $variant:ident) => {{
        let (m, n, k, out_shape) = $self.dims($layout)?;
        let lhs = Layout::contiguous_with_offset((m, k), $layout.start_offset());
        let (w_storage, w_layout) = $self.weight.storage_and_layout();
        let w = match &*w_storage {
            Storage::$variant(w) => w,
            _ => candle_core::bail!("frozen_linear: weight and input live on different devices"),
        };
        // Wᵀ as a strided view: no copy of the weight.
        let rhs = w_layout.transpose(0, 1)?;
        let mut out = $storage.matmul(w, (1, m, n, k), &lhs, &rhs)?;
        if let Some(bias) = &$self.bias {
            let (b_storage, b_layout) = bias.storage_and_layout();
            let b = match &*b_storage {
                Storage::$variant(b) => b,
                _ => candle_core::bail!("frozen_linear: bias and input live on different devices"),
            };
            if b_layout.dims() != [n] {
                candle_core::bail!("frozen_linear: bias {:?} does not fit {n} outputs", b_layout.dims());
            }
            out = out.binary_impl::<candle_core::op::Add>(b, &Layout::contiguous((m, n)), &b_layout.broadcast_as((m, n))?)?;
        }
        Ok((out, out_shape))
    }};
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        frozen_fwd!(self, storage, layout, Cpu)
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        #[cfg(feature = "cuda")]
        if self.bias.is_none() && layout.is_contiguous() && super::cuda_fused::lt_applies_storage(storage.dtype(), &self.weight) {
            let (ws, wl) = self.weight.storage_and_layout();
            if let Storage::Cuda(w) = &*ws {
                return super::cuda_fused::lt_linear_storage(storage, layout, w, wl);
            }
        }
        frozen_fwd!(self, storage, layout, Cuda)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // ∂L/∂x = g·W. The weight is not a Var, so nothing else is needed.
        super::trace::traced("frozen-linear", grad, || Ok(Some(frozen_linear_vjp(grad, &self.weight)?.reshape(arg.shape())?)))
    }
}

/// The input gradient of `x·Wᵀ (+ b)` for the output gradient `g` `[..., out]`: `g·W`, `[..., in]`.
pub fn frozen_linear_vjp(g: &Tensor, weight: &Tensor) -> Result<Tensor> {
    super::trace::traced("gemm g·W", g, || {
        #[cfg(feature = "cuda")]
        if super::cuda_fused::lt_applies(g, weight) {
            return super::cuda_fused::lt_linear(g, weight, true);
        }
        matmul_2d(&g.contiguous()?, weight)
    })
}

/// `x·Wᵀ` with a frozen `W` (`[out, in]`); `x` is `[..., in]`.
pub fn frozen_linear(xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
    frozen_affine(xs, weight, None)
}

/// `x·Wᵀ + b` with a frozen `W` (`[out, in]`) and bias `b` (`[out]`), one graph node.
pub fn frozen_affine(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let xs = xs.contiguous()?;
    if !xs.track_op() {
        // No graph needed: a plain matmul is just as fast and skips the custom-op plumbing, and
        // a few rows (decoding) take the skinny product.
        let y = match skinny(&xs, weight)? {
            Some(y) => y,
            None => plain_matmul(&xs, weight)?,
        };
        return match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        };
    }
    let bias = match bias {
        Some(b) if b.dtype() != xs.dtype() => Some(b.to_dtype(xs.dtype())?.contiguous()?),
        Some(b) => Some(b.contiguous()?),
        None => None,
    };
    xs.apply_op1(FrozenMatmul { weight: weight.clone(), bias })
}

/// `x·Wᵀ` without a graph: through cuBLASLt when `REFT_GEMM_LT=1` takes it
/// (`cuda_fused/gemm.rs`), else candle's matmul.
fn plain_matmul(xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
    super::trace::traced("gemm x·Wt", xs, || {
        #[cfg(feature = "cuda")]
        if super::cuda_fused::lt_applies(xs, weight) {
            return super::cuda_fused::lt_linear(xs, weight, false);
        }
        matmul_2d(xs, &weight.t()?)
    })
}

/// `x·Wᵀ` by `skinny_matmul` when `x` has 2–8 rows, both are f32 on the CPU and `W` is stored
/// `[out, in]` (not the input-major copy of `cpu_layout`); `None` otherwise.
fn skinny(xs: &Tensor, weight: &Tensor) -> Result<Option<Tensor>> {
    let k = *xs.dims().last().unwrap_or(&0);
    let m = xs.elem_count() / k.max(1);
    if !ROWS.contains(&m) || !xs.device().is_cpu() || xs.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return Ok(None);
    }
    let (n, wk) = weight.dims2()?;
    if wk != k {
        return Ok(None);
    }
    let (ws, wl) = weight.storage_and_layout();
    if !wl.is_contiguous() {
        return Ok(None);
    }
    let (xs_s, xl) = xs.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(w)), Storage::Cpu(CpuStorage::F32(x))) = (&*ws, &*xs_s) else {
        return Ok(None);
    };
    let (Some(xo), wo) = (xl.contiguous_offsets(), wl.start_offset()) else {
        return Ok(None);
    };
    let y = skinny_matmul(&x[xo.0..xo.1], m, k, &w[wo..wo + n * k], n);
    let mut out = xs.dims().to_vec();
    *out.last_mut().unwrap_or(&mut 0) = n;
    Ok(Some(Tensor::from_vec(y, out, xs.device())?))
}

/// `[..., k] · [k, n]` as one `[m, k]·[k, n]` GEMM: candle's broadcast matmul would instead run
/// one small GEMM per leading index, which is 2–3× slower on the CPU.
fn matmul_2d(xs: &Tensor, rhs: &Tensor) -> Result<Tensor> {
    let dims = xs.dims().to_vec();
    let k = *dims.last().unwrap_or(&1);
    let n = rhs.dim(1)?;
    let y = xs.reshape(((), k))?.matmul(rhs)?;
    let mut out = dims;
    if let Some(last) = out.last_mut() {
        *last = n;
    }
    y.reshape(out)
}
