//! Llama's gated MLP activation `silu(gate) ⊙ up`, with a backward for both inputs.
//!
//! On the CPU (f32/f64) one fused pass forward and one backward
//! (`d_gate = g ⊙ up ⊙ σ(gate)(1 + gate(1 − σ(gate)))`, `d_up = g ⊙ silu(gate)`) replace candle's
//! silu and multiply, whose backward walks the `[tokens, intermediate]` activations about ten
//! times; f32 runs on the vectorised loops of `vec_math`, f64 in scalar f64. Elsewhere the same
//! backward on the lean path of `attach.rs`.

use super::attach::{attach2, widen};
use super::cpu_kernel::{for_rows, on_storage, on_tensors, Float, Kernel, Out};
use super::vec_math;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// Elements per work row.
const CHUNK: usize = 4096;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

struct Forward;
impl Kernel for Forward {
    const NAME: &'static str = "swiglu";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        let (gate, up) = (inputs[0], inputs[1]);
        let n = gate.len();
        let mut y = vec![T::from(0.0); n];
        let out = Out::new(&mut y);
        for_rows(n.div_ceil(CHUNK), CHUNK, |rows| {
            let (a, b) = (rows.start * CHUNK, (rows.end * CHUNK).min(n));
            // SAFETY: disjoint ranges.
            let y = unsafe { out.part(a, b) };
            if let (Some(g), Some(u), Some(y)) = (T::as_f32(&gate[a..b]), T::as_f32(&up[a..b]), T::as_f32_mut(y)) {
                return vec_math::silu_mul(g, u, y);
            }
            for ((y, g), u) in y.iter_mut().zip(&gate[a..b]).zip(&up[a..b]) {
                let g = g.to();
                *y = T::from(g * sigmoid(g) * u.to());
            }
        });
        vec![y]
    }
}

struct Backward;
impl Kernel for Backward {
    const NAME: &'static str = "swiglu backward";
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>> {
        let (gate, up, g) = (inputs[0], inputs[1], inputs[2]);
        let n = gate.len();
        let (mut dg, mut du) = (vec![T::from(0.0); n], vec![T::from(0.0); n]);
        let (out_g, out_u) = (Out::new(&mut dg), Out::new(&mut du));
        for_rows(n.div_ceil(CHUNK), CHUNK, |rows| {
            let (lo, hi) = (rows.start * CHUNK, (rows.end * CHUNK).min(n));
            // SAFETY: disjoint ranges.
            let (dg, du) = unsafe { (out_g.part(lo, hi), out_u.part(lo, hi)) };
            let (a, u, gr) = (&gate[lo..hi], &up[lo..hi], &g[lo..hi]);
            if let (Some(a), Some(u), Some(gr)) = (T::as_f32(a), T::as_f32(u), T::as_f32(gr)) {
                if let (Some(dg), Some(du)) = (T::as_f32_mut(dg), T::as_f32_mut(du)) {
                    return vec_math::silu_mul_backward(a, u, gr, dg, du);
                }
            }
            for i in 0..hi - lo {
                let (a, u, g) = (gate[lo + i].to(), up[lo + i].to(), g[lo + i].to());
                let s = sigmoid(a);
                dg[i] = T::from(g * u * s * (1.0 + a * (1.0 - s)));
                du[i] = T::from(g * a * s);
            }
        });
        vec![dg, du]
    }
}

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((on_storage(&Forward, &[(s1, l1), (s2, l2)])?, l1.shape().clone()))
    }

    fn bwd(&self, gate: &Tensor, up: &Tensor, _res: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let mut d = on_tensors(&Backward, &[gate, up, g], gate.shape())?;
        let du = d.pop();
        Ok((d.pop(), du))
    }
}

/// `silu(gate) ⊙ up` for two tensors of one shape.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.shape() != up.shape() {
        candle_core::bail!("swiglu: gate {:?} and up {:?} differ in shape", gate.dims(), up.dims());
    }
    let fused = gate.device().is_cpu() && matches!(gate.dtype(), DType::F32 | DType::F64) && gate.dtype() == up.dtype();
    if fused {
        return gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu);
    }
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(gate) && gate.dtype() == up.dtype() {
        return super::cuda_fused::swiglu(gate, up);
    }
    swiglu_lean(gate, up)
}

/// SwiGLU off the native kernel (CUDA, half precision): the forward outside the graph and the
/// closed-form backward above, in f32 for half precision (see `attach.rs`).
#[doc(hidden)]
pub fn swiglu_lean(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let y = (gate.detach().silu()? * up.detach())?;
    attach2("swiglu", gate, up, y, |gate, up, _y, g| {
        let (d_gate, d_up) = lean_backward(gate, up, g)?;
        Ok((Some(d_gate), Some(d_up)))
    })
}

/// The closed-form backward in f32 for half precision, in the inputs' dtypes.
fn lean_backward(gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let (a, u, g) = (widen(gate)?, widen(up)?, widen(g)?);
    let sig = (a.neg()?.exp()? + 1.0)?.recip()?;
    let silu = (&a * &sig)?;
    // σ(a)(1 + a(1 − σ(a))) = σ(a) + silu(a)(1 − σ(a))
    let dsilu = (&sig + (&silu * (1.0 - &sig)?)?)?;
    let d_gate = ((&g * &u)? * dsilu)?.to_dtype(gate.dtype())?;
    let d_up = (g * silu)?.to_dtype(up.dtype())?;
    Ok((d_gate, d_up))
}

/// The gradients of [`swiglu`]'s two inputs for the output gradient `g`, on the path the forward
/// takes (see `rms_norm_vjp` in `norm.rs`).
pub(crate) fn swiglu_vjp(gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let same = gate.dtype() == up.dtype();
    if same && gate.device().is_cpu() && matches!(gate.dtype(), DType::F32 | DType::F64) {
        let mut d = on_tensors(&Backward, &[gate, up, g], gate.shape())?;
        let du = d.pop().expect("two gradients");
        return Ok((d.pop().expect("two gradients"), du));
    }
    #[cfg(feature = "cuda")]
    if same && super::cuda_fused::applies(gate) {
        return super::cuda_fused::swiglu_backward(gate, up, g);
    }
    lean_backward(gate, up, g)
}
