//! Cross-entropy through a frozen LM head, `nll_i = logsumexp(x_i·Wᵀ) − x_i·w_{y_i}`, fused.
//!
//! Built from primitives (`log_softmax_last` + `gather`), the loss keeps about six `[n, vocab]`
//! tensors alive for the backward (logits, shifted logits, their exponentials, log-probabilities
//! and the gradients of each), and every one is a full pass over memory. For SmolLM2 (vocab
//! 49,152) at 8 × 512 labelled tokens that is about 2.4 GB. Here the forward runs the head in
//! chunks of rows outside the graph and keeps only each row's log-sum-exp, plus the softmax
//! probabilities while they fit a budget; the custom op's backward returns
//! `∂L/∂x = g·(softmax − onehot)·W` per chunk, recomputing a chunk's logits when its
//! probabilities were not kept. Memory is then one chunk, not the whole `[n, vocab]`.
//!
//! On the CPU in f32 a chunk's softmax, log-sum-exp and loss, and the backward's
//! `g·(softmax − onehot)`, are one vectorised pass per row (`vec_math`); other devices and
//! dtypes run the same steps as candle ops.
//!
//! The head is frozen, so no weight gradient is ever formed. Logits are promoted to f32 for
//! half-precision models (f64 stays f64, for the gradient checks).

use candle_core::{CpuStorage, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor, D};

use super::frozen_linear;
use super::vec_math;

/// Bytes of one chunk of logits (rows are chunked to stay under it).
const CHUNK_BYTES: usize = 64 << 20;
/// Probabilities are kept for the backward up to this many bytes; beyond it they are recomputed.
const KEEP_BYTES: usize = 256 << 20;

struct LmCrossEntropy {
    weight: Tensor,
    /// `[n, 1]` target ids (u32).
    targets: Tensor,
    /// `[n]` negative log-likelihoods, computed when the op was built.
    nll: Tensor,
    /// `[n, 1]` log-sum-exp per row (f32 or f64).
    lse: Tensor,
    /// Softmax probabilities per chunk, when they fit `KEEP_BYTES`.
    probs: Option<Vec<Tensor>>,
    chunk: usize,
}

fn logits(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let l = frozen_linear(x, w)?;
    if l.dtype() == DType::F64 {
        Ok(l)
    } else {
        l.to_dtype(DType::F32)
    }
}

impl LmCrossEntropy {
    fn new(x: &Tensor, weight: &Tensor, targets: &Tensor, chunk_bytes: usize, keep_bytes: usize) -> Result<Self> {
        let x_tracks = x.track_op();
        let x = x.detach();
        let (n, _) = x.dims2()?;
        let vocab = weight.dim(0)?;
        let elem = if x.dtype() == DType::F64 { 8 } else { 4 };
        let chunk = (chunk_bytes / (vocab * elem).max(1)).clamp(1, n.max(1));
        // Without a graph there is no backward to keep probabilities for.
        let keep = x_tracks && n * vocab * elem <= keep_bytes;
        let (mut nll, mut lse, mut probs) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let l = logits(&x.narrow(0, start, len)?, weight)?;
            if let Some(v) = cpu_f32(&l)? {
                let t = host_targets(&targets.narrow(0, start, len)?, vocab)?;
                let (p, row_lse, row_nll) = softmax_rows(v, vocab, &t);
                let dev = l.device();
                nll.push(Tensor::from_vec(row_nll, len, dev)?);
                lse.push(Tensor::from_vec(row_lse, (len, 1), dev)?);
                if keep {
                    probs.push(Tensor::from_vec(p, (len, vocab), dev)?);
                }
                continue;
            }
            let max = l.max_keepdim(D::Minus1)?;
            let e = l.broadcast_sub(&max)?.exp()?;
            let sum = e.sum_keepdim(D::Minus1)?;
            let row_lse = (sum.log()? + &max)?;
            let target_logit = l.gather(&targets.narrow(0, start, len)?, 1)?;
            nll.push((&row_lse - target_logit)?.squeeze(1)?);
            lse.push(row_lse);
            if keep {
                probs.push(e.broadcast_div(&sum)?);
            }
        }
        Ok(Self {
            weight: weight.clone(),
            targets: targets.clone(),
            nll: Tensor::cat(&nll, 0)?,
            lse: Tensor::cat(&lse, 0)?,
            probs: keep.then_some(probs),
            chunk,
        })
    }
}

/// A CPU f32 tensor's values (the vectorised path); `None` for other devices and dtypes.
fn cpu_f32(t: &Tensor) -> Result<Option<Vec<f32>>> {
    if !t.device().is_cpu() || t.dtype() != DType::F32 {
        return Ok(None);
    }
    Ok(Some(t.flatten_all()?.to_vec1()?))
}

/// Target ids on the host, checked against the vocabulary (the gather of the general path
/// fails on them too).
fn host_targets(t: &Tensor, vocab: usize) -> Result<Vec<u32>> {
    let t: Vec<u32> = t.flatten_all()?.to_vec1()?;
    if let Some(bad) = t.iter().find(|&&y| y as usize >= vocab) {
        candle_core::bail!("lm_cross_entropy: target id {bad} is outside the vocabulary ({vocab})");
    }
    Ok(t)
}

/// Rows of logits `[len, vocab]` → (softmax probabilities in place, log-sum-exp per row,
/// `lse − logit[target]` per row), one pass per row on the thread pool.
fn softmax_rows(mut v: Vec<f32>, vocab: usize, targets: &[u32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    let pairs: Vec<(f32, f32)> = v
        .par_chunks_mut(vocab)
        .zip(targets)
        .map(|(row, &y)| {
            let target = row[y as usize];
            let lse = vec_math::softmax_in_place(row);
            (lse, lse - target)
        })
        .collect();
    let (lse, nll) = pairs.into_iter().unzip();
    (v, lse, nll)
}

impl LmCrossEntropy {
    /// `g·(softmax − onehot(y))` for rows `start..start + len` in one pass per row, on CPU f32
    /// (from the kept probabilities, or from recomputed logits and the kept log-sum-exp).
    fn cpu_chunk_gradient(&self, x: &Tensor, start: usize, len: usize, chunk: usize, g: &Tensor) -> Result<Option<Tensor>> {
        use rayon::prelude::*;
        let (v, shift) = match &self.probs {
            Some(kept) => (cpu_f32(&kept[chunk])?, None),
            None => (cpu_f32(&logits(&x.narrow(0, start, len)?, &self.weight)?)?, Some(self.lse.narrow(0, start, len)?)),
        };
        let Some(mut v) = v else { return Ok(None) };
        let vocab = self.weight.dim(0)?;
        let g: Vec<f32> = g.to_dtype(DType::F32)?.to_vec1()?;
        let lse: Option<Vec<f32>> = shift.map(|s| s.flatten_all()?.to_vec1()).transpose()?;
        let t: Vec<u32> = self.targets.narrow(0, start, len)?.flatten_all()?.to_vec1()?;
        v.par_chunks_mut(vocab).enumerate().for_each(|(i, row)| {
            vec_math::exp_scale(row, lse.as_ref().map(|l| l[i]), g[i]);
            row[t[i] as usize] -= g[i];
        });
        Ok(Some(Tensor::from_vec(v, (len, vocab), x.device())?))
    }
}

impl CustomOp1 for LmCrossEntropy {
    fn name(&self) -> &'static str {
        "lm-cross-entropy"
    }

    // The values were computed in `new` (chunked, outside the graph); the op only hands them over
    // so that the graph knows how to differentiate them.
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        let (s, l) = self.nll.storage_and_layout();
        match &*s {
            Storage::Cpu(c) if l.is_contiguous() && l.start_offset() == 0 => Ok((c.clone(), self.nll.shape().clone())),
            _ => candle_core::bail!("lm-cross-entropy: losses are not a contiguous CPU tensor"),
        }
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout) -> Result<(CudaStorage, Shape)> {
        let (s, l) = self.nll.storage_and_layout();
        match &*s {
            Storage::Cuda(c) if l.is_contiguous() && l.start_offset() == 0 => {
                use candle_core::backend::BackendStorage;
                Ok((c.try_clone(l)?, self.nll.shape().clone()))
            }
            _ => candle_core::bail!("lm-cross-entropy: losses are not a contiguous CUDA tensor"),
        }
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        super::trace::traced("lm-cross-entropy", grad, || self.backward(arg, grad))
    }
}

impl LmCrossEntropy {
    fn backward(&self, arg: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let x = arg.detach();
        let n = x.dim(0)?;
        let mut parts = Vec::new();
        for (k, start) in (0..n).step_by(self.chunk).enumerate() {
            let len = self.chunk.min(n - start);
            let g = grad.narrow(0, start, len)?;
            if let Some(d) = self.cpu_chunk_gradient(&x, start, len, k, &g)? {
                parts.push(d.to_dtype(x.dtype())?.matmul(&self.weight)?);
                continue;
            }
            let p = match &self.probs {
                Some(kept) => kept[k].clone(),
                None => logits(&x.narrow(0, start, len)?, &self.weight)?
                    .broadcast_sub(&self.lse.narrow(0, start, len)?)?
                    .exp()?,
            };
            let g = g.to_dtype(p.dtype())?.unsqueeze(1)?;
            // g·(p − onehot(y)): scale the row, then subtract g at the target column.
            let d = p.broadcast_mul(&g)?.scatter_add(&self.targets.narrow(0, start, len)?, &g.neg()?, 1)?;
            // dX = d·W: the head is frozen, so this is the only product the backward needs.
            parts.push(d.to_dtype(x.dtype())?.matmul(&self.weight)?);
        }
        Ok(Some(Tensor::cat(&parts, 0)?))
    }
}

/// Per-row negative log-likelihood `[n]` of `targets` (`[n]` u32) under the logits `x·Wᵀ`, for
/// hidden rows `x` `[n, hidden]` (after the final norm) and a frozen head `W` `[vocab, hidden]`.
pub fn lm_cross_entropy(x: &Tensor, weight: &Tensor, targets: &Tensor) -> Result<Tensor> {
    lm_cross_entropy_with(x, weight, targets, CHUNK_BYTES, KEEP_BYTES)
}

/// [`lm_cross_entropy`] with explicit chunk and keep budgets (tests force the recomputing path).
#[doc(hidden)]
pub fn lm_cross_entropy_with(x: &Tensor, weight: &Tensor, targets: &Tensor, chunk_bytes: usize, keep_bytes: usize) -> Result<Tensor> {
    let targets = targets.reshape(((), 1))?;
    if targets.dim(0)? != x.dim(0)? {
        candle_core::bail!("lm_cross_entropy: {} targets for {} rows", targets.dim(0)?, x.dim(0)?);
    }
    let op = LmCrossEntropy::new(x, weight, &targets, chunk_bytes, keep_bytes)?;
    if !x.track_op() {
        return Ok(op.nll);
    }
    x.contiguous()?.apply_op1(op)
}
