//! The ops between packed projections and the attention and MLP, with no graph (the block nodes
//! of `models/llama_block.rs` and the inference forward use them; their backward is written
//! there from [`qkv_rows_vjp`] and [`swiglu_packed_vjp`]).
//!
//! A layer's q, k and v weights packed into one `[(nh + 2·nkv)·hd, d]` matrix, and its gate and
//! up weights into one `[2f, d]` (`models/packed.rs`), make one GEMM of each group, forward and
//! backward, where there were five GEMMs forward and five plus three activation-sized adds
//! backward. The GEMMs' output rows are then split here: on CUDA each split (or its gradient) is
//! one fused kernel (`kernels/fused.cu`: `qkv_rows`, and SwiGLU with the packed width), in
//! place of two rotations and a transposing copy (or a split and a concatenation); elsewhere the
//! same is composed from the unpacked ops, to the same numbers (`tests/packed.rs`).

use super::rope::{rope_heads, rope_vjp_rows, RopeTables};
use super::swiglu::{swiglu, swiglu_vjp};
use candle_core::{Result, Tensor};

/// Rotated queries `[b, nh, t, hd]`, rotated keys and values `[b, nkv, t, hd]` from packed
/// projection rows `[b, t, (nh + 2·nkv)·hd]`.
pub(crate) fn qkv_heads(rows: &Tensor, rope: &RopeTables, nh: usize, nkv: usize, hd: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, t, w) = rows.dims3()?;
    if w != (nh + 2 * nkv) * hd {
        candle_core::bail!("packed q/k/v rows of {w} do not hold {nh} + 2·{nkv} heads of {hd}");
    }
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(rows) && hd % 2 == 0 && rope.cos.dims() == [b, 1, t, hd] && rope.cos.dtype() == rows.dtype() {
        return super::trace::traced("qkv split", rows, || super::cuda_fused::qkv_heads(rows, &rope.cos, &rope.sin, [nh, nkv, hd]));
    }
    let heads = rows.detach().reshape((b, t, nh + 2 * nkv, hd))?;
    let q = rope_heads(&heads.narrow(2, 0, nh)?, rope)?;
    let k = rope_heads(&heads.narrow(2, nh, nkv)?, rope)?;
    let v = heads.narrow(2, nh + nkv, nkv)?.transpose(1, 2)?.contiguous()?;
    Ok((q, k, v))
}

/// Whether [`qkv_heads_into_cache`] takes rows like `x` (`[b, t, ..]`, no graph): CUDA with the
/// fused kernels and tables for `t` positions.
pub(crate) fn qkv_into_cache_applies(x: &Tensor, rope: &RopeTables, hd: usize) -> bool {
    #[cfg(feature = "cuda")]
    if let Ok((b, t, _)) = x.dims3() {
        return super::cuda_fused::applies(x) && !x.track_op() && hd % 2 == 0 && rope.cos.dims() == [b, 1, t, hd] && rope.cos.dtype() == x.dtype();
    }
    let _ = (x, rope, hd);
    false
}

/// [`qkv_heads`]'s queries, with its keys and values written into the reserved cache buffers
/// `kc`, `vc` `[b, nkv, capacity, hd]` at positions `past..past + t` in the same kernel (a
/// decoding step's split and cache append). Only where [`qkv_into_cache_applies`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn qkv_heads_into_cache(rows: &Tensor, rope: &RopeTables, nh: usize, nkv: usize, hd: usize, kc: &Tensor, vc: &Tensor, past: usize) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if qkv_into_cache_applies(rows, rope, hd) {
        return super::trace::traced("qkv split", rows, || super::cuda_fused::qkv_heads_into_cache(rows, &rope.cos, &rope.sin, [nh, nkv, hd], kc, vc, past));
    }
    let _ = (rows, rope, nh, nkv, hd, kc, vc, past);
    candle_core::bail!("qkv_heads_into_cache: no fused kernel here (CUDA only)")
}

/// The gradient of the packed rows `[b, t, (nh + 2·nkv)·hd]` from those of [`qkv_heads`]'s
/// outputs (`dq` `[b, nh, t, hd]`, `dk` and `dv` `[b, nkv, t, hd]`).
pub(crate) fn qkv_rows_vjp(dq: &Tensor, dk: &Tensor, dv: &Tensor, rope: &RopeTables) -> Result<Tensor> {
    let (b, nh, t, hd) = dq.dims4()?;
    let nkv = dk.dim(1)?;
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(dq) && hd % 2 == 0 && rope.cos.dims() == [b, 1, t, hd] && rope.cos.dtype() == dq.dtype() {
        return super::cuda_fused::qkv_rows_grad(dq, dk, dv, &rope.cos, &rope.sin, [nh, nkv, hd]);
    }
    let dq = rope_vjp_rows(&dq.contiguous()?, rope)?.reshape((b, t, nh * hd))?;
    let dk = rope_vjp_rows(&dk.contiguous()?, rope)?.reshape((b, t, nkv * hd))?;
    let dv = dv.transpose(1, 2)?.contiguous()?.reshape((b, t, nkv * hd))?;
    Tensor::cat(&[dq, dk, dv], 2)
}

/// `silu(gate) ⊙ up` of packed rows `au` `[.., 2f]` (the gate's `f` columns, then up's).
pub(crate) fn swiglu_packed(au: &Tensor, f: usize) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(au) {
        return super::trace::traced("swiglu", au, || super::cuda_fused::swiglu_packed(au, f));
    }
    let (a, u) = split(au, f)?;
    swiglu(&a, &u)
}

/// The packed gradient `[.., 2f]` (`d_gate | d_up`) of [`swiglu_packed`] for `g` `[.., f]`.
pub(crate) fn swiglu_packed_vjp(au: &Tensor, g: &Tensor, f: usize) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if super::cuda_fused::applies(au) && g.dtype() == au.dtype() {
        return super::cuda_fused::swiglu_packed_vjp(au, g, f);
    }
    let (a, u) = split(au, f)?;
    let (da, du) = swiglu_vjp(&a, &u, g)?;
    Tensor::cat(&[da, du], au.rank() - 1)
}

fn split(au: &Tensor, f: usize) -> Result<(Tensor, Tensor)> {
    let last = au.rank().saturating_sub(1);
    if f == 0 || au.dims().last() != Some(&(2 * f)) {
        candle_core::bail!("packed gate and up {:?} are not two halves of {f}", au.dims());
    }
    let au = au.detach();
    Ok((au.narrow(last, 0, f)?.contiguous()?, au.narrow(last, f, f)?.contiguous()?))
}
