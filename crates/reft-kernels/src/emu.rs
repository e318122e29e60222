//! The kernels of `kernels/fused.cu` run on the host (`kernels/emu.h`), for tests: every CUDA
//! thread is a host thread and warp shuffles really exchange values, so a wrong index, a lane
//! left out of a reduction or a bad launch geometry shows up here as it would on the GPU.
//! Each wrapper launches with the geometry that reft-core's CUDA path uses (`row_launch`,
//! `elementwise_launch`) unless told otherwise.

use half::{bf16, f16};

/// A storage type the kernels are built for.
pub trait Elem: Copy + Default + Send + Sync + 'static {
    #[doc(hidden)]
    const KERNELS: Kernels<Self>;
}

#[doc(hidden)]
pub struct Kernels<T> {
    attn_fwd: unsafe extern "C" fn(u32, u32, *const T, *const f32, *mut T, usize, i32, i32, i32, i32, f32),
    attn_bwd: unsafe extern "C" fn(u32, u32, *const T, *const T, *mut T, usize, i32, f32),
    rms_fwd: unsafe extern "C" fn(u32, u32, *const T, *const T, *mut T, usize, i32, f32),
    rms_bwd: unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *mut T, usize, i32, f32),
    rope: unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *mut T, usize, i32, i32, i32, i32, i32),
    swiglu_fwd: unsafe extern "C" fn(u32, u32, *const T, *const T, *mut T, usize, usize),
    swiglu_bwd: unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *mut T, usize, usize),
    rows_add: unsafe extern "C" fn(u32, u32, *const T, *const T, *const u32, *mut T, usize, i32, usize),
    qkv_rows: QkvRows<T>,
    decode_attn: DecodeAttn<T>,
    add_rms: unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *mut T, *mut T, usize, i32, f32),
    rms_bwd_add: unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *const T, *mut T, usize, i32, f32),
    embed: unsafe extern "C" fn(u32, u32, *const T, *const u32, *mut T, usize, i32),
    qkv_at: QkvRowsAt<T>,
    attn_at: DecodeAttnAt<T>,
    argmax: unsafe extern "C" fn(u32, u32, *const T, *mut u32, usize, i32),
}

type DecodeAttn<T> = unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *const f32, *mut T, usize, i32, i32, i32, i32, i32, f32);

type QkvRowsAt<T> = unsafe extern "C" fn(u32, u32, *mut T, *mut T, *mut T, *mut T, *const T, *const T, usize, i32, i32, i32, i32, *const i32);

type DecodeAttnAt<T> = unsafe extern "C" fn(u32, u32, *const T, *const T, *const T, *const f32, *mut T, usize, i32, i32, i32, i32, f32, *const i32);

type QkvRows<T> = unsafe extern "C" fn(u32, u32, *mut T, *mut T, *mut T, *mut T, *const T, *const T, usize, i32, i32, i32, i32, i32, i32, i32);

macro_rules! elem {
    ($t:ty, $af:ident, $ab:ident, $rf:ident, $rb:ident, $ro:ident, $sf:ident, $sb:ident, $ra:ident, $qk:ident, $da:ident, $ar:ident, $rba:ident, $em:ident, $am:ident, $qa:ident, $daa:ident) => {
        extern "C" {
            fn $af(g: u32, b: u32, s: *const $t, m: *const f32, p: *mut $t, rows: usize, k: i32, q: i32, heads: i32, mrows: i32, scale: f32);
            fn $ab(g: u32, b: u32, p: *const $t, gr: *const $t, ds: *mut $t, rows: usize, k: i32, scale: f32);
            fn $rf(g: u32, b: u32, x: *const $t, w: *const $t, y: *mut $t, rows: usize, d: i32, eps: f32);
            fn $rb(g: u32, b: u32, x: *const $t, w: *const $t, gr: *const $t, dx: *mut $t, rows: usize, d: i32, eps: f32);
            fn $ro(g: u32, b: u32, x: *const $t, c: *const $t, s: *const $t, y: *mut $t, n: usize, heads: i32, t: i32, hd: i32, inverse: i32, layout: i32);
            fn $sf(g: u32, b: u32, a: *const $t, u: *const $t, y: *mut $t, n: usize, f: usize);
            fn $sb(g: u32, b: u32, a: *const $t, u: *const $t, gr: *const $t, d: *mut $t, n: usize, f: usize);
            fn $da(g: u32, b: u32, q: *const $t, k: *const $t, v: *const $t, m: *const f32, o: *mut $t, rows: usize, gq: i32, nkv: i32, tk: i32, kcap: i32, hd: i32, scale: f32);
            fn $ar(g: u32, b: u32, x: *const $t, r: *const $t, w: *const $t, s: *mut $t, y: *mut $t, rows: usize, d: i32, eps: f32);
            fn $rba(g: u32, b: u32, x: *const $t, w: *const $t, gr: *const $t, res: *const $t, dx: *mut $t, rows: usize, d: i32, eps: f32);
            fn $qk(g: u32, b: u32, rows: *mut $t, q: *mut $t, k: *mut $t, v: *mut $t, c: *const $t, s: *const $t, n: usize, t: i32, nh: i32, nkv: i32, hd: i32, inverse: i32, kcap: i32, koff: i32);
            fn $ra(g: u32, b: u32, h: *const $t, dl: *const $t, r: *const u32, out: *mut $t, n: usize, d: i32, nh: usize);
            fn $em(g: u32, b: u32, table: *const $t, ids: *const u32, out: *mut $t, n: usize, d: i32);
            fn $am(g: u32, b: u32, x: *const $t, out: *mut u32, rows: usize, n: i32);
            fn $qa(g: u32, b: u32, rows: *mut $t, q: *mut $t, k: *mut $t, v: *mut $t, c: *const $t, s: *const $t, n: usize, nh: i32, nkv: i32, hd: i32, kcap: i32, info: *const i32);
            fn $daa(g: u32, b: u32, q: *const $t, k: *const $t, v: *const $t, m: *const f32, o: *mut $t, rows: usize, gq: i32, nkv: i32, kcap: i32, hd: i32, scale: f32, info: *const i32);
        }
        impl Elem for $t {
            const KERNELS: Kernels<Self> = Kernels {
                attn_fwd: $af,
                attn_bwd: $ab,
                rms_fwd: $rf,
                rms_bwd: $rb,
                rope: $ro,
                swiglu_fwd: $sf,
                swiglu_bwd: $sb,
                rows_add: $ra,
                qkv_rows: $qk,
                decode_attn: $da,
                add_rms: $ar,
                rms_bwd_add: $rba,
                embed: $em,
                argmax: $am,
                qkv_at: $qa,
                attn_at: $daa,
            };
        }
    };
}

elem!(f32, reft_emu_attn_softmax_fwd_f32, reft_emu_attn_softmax_bwd_f32, reft_emu_rmsnorm_fwd_f32, reft_emu_rmsnorm_bwd_f32, reft_emu_rope_f32, reft_emu_swiglu_fwd_f32, reft_emu_swiglu_bwd_f32, reft_emu_rows_add_f32, reft_emu_qkv_rows_f32, reft_emu_decode_attn_f32, reft_emu_add_rmsnorm_fwd_f32, reft_emu_rmsnorm_bwd_add_f32, reft_emu_embed_rows_f32, reft_emu_argmax_rows_f32, reft_emu_qkv_rows_at_f32, reft_emu_decode_attn_at_f32);
elem!(bf16, reft_emu_attn_softmax_fwd_bf16, reft_emu_attn_softmax_bwd_bf16, reft_emu_rmsnorm_fwd_bf16, reft_emu_rmsnorm_bwd_bf16, reft_emu_rope_bf16, reft_emu_swiglu_fwd_bf16, reft_emu_swiglu_bwd_bf16, reft_emu_rows_add_bf16, reft_emu_qkv_rows_bf16, reft_emu_decode_attn_bf16, reft_emu_add_rmsnorm_fwd_bf16, reft_emu_rmsnorm_bwd_add_bf16, reft_emu_embed_rows_bf16, reft_emu_argmax_rows_bf16, reft_emu_qkv_rows_at_bf16, reft_emu_decode_attn_at_bf16);
elem!(f16, reft_emu_attn_softmax_fwd_f16, reft_emu_attn_softmax_bwd_f16, reft_emu_rmsnorm_fwd_f16, reft_emu_rmsnorm_bwd_f16, reft_emu_rope_f16, reft_emu_swiglu_fwd_f16, reft_emu_swiglu_bwd_f16, reft_emu_rows_add_f16, reft_emu_qkv_rows_f16, reft_emu_decode_attn_f16, reft_emu_add_rmsnorm_fwd_f16, reft_emu_rmsnorm_bwd_add_f16, reft_emu_embed_rows_f16, reft_emu_argmax_rows_f16, reft_emu_qkv_rows_at_f16, reft_emu_decode_attn_at_f16);

fn i32_of(v: usize, what: &str) -> i32 {
    i32::try_from(v).unwrap_or_else(|_| panic!("{what} {v} does not fit i32"))
}

/// `softmax(scale·s + mask)` over the last dim of `s = [b, h, q, k]`; `mask` is `[b, 1, mrows, k]`.
pub fn attn_softmax_fwd<T: Elem>(s: &[T], mask: &[f32], dims: [usize; 4], mrows: usize, scale: f32) -> Vec<T> {
    let [b, h, q, k] = dims;
    assert_eq!(s.len(), b * h * q * k, "scores");
    assert!(mrows == 1 || mrows == q, "mask rows");
    assert_eq!(mask.len(), b * mrows * k, "mask");
    let rows = b * h * q;
    let mut p = vec![T::default(); s.len()];
    let (g, bl) = crate::row_launch(rows);
    unsafe { (T::KERNELS.attn_fwd)(g, bl, s.as_ptr(), mask.as_ptr(), p.as_mut_ptr(), rows, i32_of(k, "k"), i32_of(q, "q"), i32_of(h, "heads"), i32_of(mrows, "mask rows"), scale) };
    p
}

/// `scale · p ⊙ (g − Σ g ⊙ p)` per row of length `k`.
pub fn attn_softmax_bwd<T: Elem>(p: &[T], g: &[T], k: usize, scale: f32) -> Vec<T> {
    assert!(p.len() == g.len() && k > 0 && p.len() % k == 0, "probabilities and gradient");
    let rows = p.len() / k;
    let mut ds = vec![T::default(); p.len()];
    let (gr, bl) = crate::row_launch(rows);
    unsafe { (T::KERNELS.attn_bwd)(gr, bl, p.as_ptr(), g.as_ptr(), ds.as_mut_ptr(), rows, i32_of(k, "k"), scale) };
    ds
}

/// RMSNorm of rows of length `w.len()` with gain `w`.
pub fn rmsnorm_fwd<T: Elem>(x: &[T], w: &[T], eps: f32) -> Vec<T> {
    let d = w.len();
    assert!(d > 0 && x.len() % d == 0, "rows");
    let rows = x.len() / d;
    let mut y = vec![T::default(); x.len()];
    let (g, b) = crate::row_launch(rows);
    unsafe { (T::KERNELS.rms_fwd)(g, b, x.as_ptr(), w.as_ptr(), y.as_mut_ptr(), rows, i32_of(d, "d"), eps) };
    y
}

/// The input gradient of `rmsnorm_fwd` for the output gradient `g`.
pub fn rmsnorm_bwd<T: Elem>(x: &[T], w: &[T], g: &[T], eps: f32) -> Vec<T> {
    let d = w.len();
    assert!(d > 0 && x.len() % d == 0 && g.len() == x.len(), "rows");
    let rows = x.len() / d;
    let mut dx = vec![T::default(); x.len()];
    let (gr, b) = crate::row_launch(rows);
    unsafe { (T::KERNELS.rms_bwd)(gr, b, x.as_ptr(), w.as_ptr(), g.as_ptr(), dx.as_mut_ptr(), rows, i32_of(d, "d"), eps) };
    dx
}

/// [`rmsnorm_bwd`] plus the residual branch's gradient `res` (`reft_rmsnorm_bwd_add`).
pub fn rmsnorm_bwd_add<T: Elem>(x: &[T], w: &[T], g: &[T], res: &[T], eps: f32) -> Vec<T> {
    let d = w.len();
    assert!(d > 0 && x.len() % d == 0 && g.len() == x.len() && res.len() == x.len(), "rows");
    let rows = x.len() / d;
    let mut dx = vec![T::default(); x.len()];
    let (gr, b) = crate::row_launch(rows);
    unsafe { (T::KERNELS.rms_bwd_add)(gr, b, x.as_ptr(), w.as_ptr(), g.as_ptr(), res.as_ptr(), dx.as_mut_ptr(), rows, i32_of(d, "d"), eps) };
    dx
}

/// RoPE of `x = [b, h, t, hd]` with tables `[b, 1, t, hd]`; `inverse` applies the transpose
/// (the backward). `grid` overrides the launch's block count (to exercise the stride loop).
pub fn rope<T: Elem>(x: &[T], cos: &[T], sin: &[T], dims: [usize; 4], inverse: bool, grid: Option<u32>) -> Vec<T> {
    rope_layout(x, cos, sin, dims, inverse, 0, grid)
}

/// [`rope`] with `x` read from (`layout` bit 1) or `y` written to (bit 2) the row layout
/// `[b, t, h, hd]`; `dims` stay `[b, h, t, hd]`.
pub fn rope_layout<T: Elem>(x: &[T], cos: &[T], sin: &[T], dims: [usize; 4], inverse: bool, layout: i32, grid: Option<u32>) -> Vec<T> {
    let [b, h, t, hd] = dims;
    assert!(x.len() == b * h * t * hd && cos.len() == b * t * hd && sin.len() == cos.len() && hd % 2 == 0, "rope shapes");
    let mut y = vec![T::default(); x.len()];
    let (g, bl) = crate::elementwise_launch(x.len());
    unsafe {
        (T::KERNELS.rope)(grid.unwrap_or(g), bl, x.as_ptr(), cos.as_ptr(), sin.as_ptr(), y.as_mut_ptr(), x.len(), i32_of(h, "heads"), i32_of(t, "t"), i32_of(hd, "hd"), inverse as i32, layout)
    };
    y
}

/// `round(silu(a)) · u`.
pub fn swiglu_fwd<T: Elem>(a: &[T], u: &[T], grid: Option<u32>) -> Vec<T> {
    assert_eq!(a.len(), u.len(), "gate and up");
    let mut y = vec![T::default(); a.len()];
    let (g, b) = crate::elementwise_launch(a.len());
    unsafe { (T::KERNELS.swiglu_fwd)(grid.unwrap_or(g), b, a.as_ptr(), u.as_ptr(), y.as_mut_ptr(), a.len(), 0) };
    y
}

/// `(d_gate, d_up)` for the output gradient `g`.
pub fn swiglu_bwd<T: Elem>(a: &[T], u: &[T], g: &[T], grid: Option<u32>) -> (Vec<T>, Vec<T>) {
    assert!(a.len() == u.len() && g.len() == a.len(), "gate, up and gradient");
    let n = a.len();
    let mut d = vec![T::default(); 2 * n];
    let (gr, b) = crate::elementwise_launch(n);
    unsafe { (T::KERNELS.swiglu_bwd)(grid.unwrap_or(gr), b, a.as_ptr(), u.as_ptr(), g.as_ptr(), d.as_mut_ptr(), n, 0) };
    let du = d.split_off(n);
    (d, du)
}

/// [`swiglu_fwd`] of the packed rows `au` `[rows, 2f]` (gate, then up): `[rows, f]`.
pub fn swiglu_packed_fwd<T: Elem>(au: &[T], f: usize, grid: Option<u32>) -> Vec<T> {
    assert!(f > 0 && au.len() % (2 * f) == 0, "packed gate and up");
    let n = au.len() / 2;
    let mut y = vec![T::default(); n];
    let (g, b) = crate::elementwise_launch(n);
    unsafe { (T::KERNELS.swiglu_fwd)(grid.unwrap_or(g), b, au.as_ptr(), au.as_ptr(), y.as_mut_ptr(), n, f) };
    y
}

/// [`swiglu_bwd`] of the packed rows `au` for the output gradient `g` `[rows, f]`, written as
/// packed rows `[rows, 2f]` (`d_gate | d_up`).
pub fn swiglu_packed_bwd<T: Elem>(au: &[T], g: &[T], f: usize, grid: Option<u32>) -> Vec<T> {
    assert!(f > 0 && au.len() % (2 * f) == 0 && g.len() * 2 == au.len(), "packed gate, up and gradient");
    let n = g.len();
    let mut d = vec![T::default(); 2 * n];
    let (gr, b) = crate::elementwise_launch(n);
    unsafe { (T::KERNELS.swiglu_bwd)(grid.unwrap_or(gr), b, au.as_ptr(), au.as_ptr(), g.as_ptr(), d.as_mut_ptr(), n, f) };
    d
}

/// Decoding attention (`reft_decode_attn`): `q` `[b, nkv, g, hd]`, keys and values
/// `[b, nkv, kcap, hd]` of which the first `tk` positions are read, `mask` `[b, tk]`; returns
/// `[b, nkv, g, hd]`.
#[allow(clippy::too_many_arguments)]
pub fn decode_attn<T: Elem>(q: &[T], k: &[T], v: &[T], mask: &[f32], dims: [usize; 4], tk: usize, kcap: usize, hd: usize, scale: f32) -> Vec<T> {
    let [b, nkv, g, qd] = dims;
    assert!(qd == hd && q.len() == b * nkv * g * hd && k.len() == b * nkv * kcap * hd && v.len() == k.len() && mask.len() == b * tk && tk <= kcap && hd <= 256, "decode attention shapes");
    let rows = b * nkv * g;
    let mut out = vec![T::default(); q.len()];
    let (gr, bl) = crate::row_launch(rows);
    unsafe {
        (T::KERNELS.decode_attn)(gr, bl, q.as_ptr(), k.as_ptr(), v.as_ptr(), mask.as_ptr(), out.as_mut_ptr(), rows, i32_of(g, "g"), i32_of(nkv, "nkv"), i32_of(tk, "tk"), i32_of(kcap, "kcap"), i32_of(hd, "hd"), scale)
    };
    out
}

/// `(x + r, rmsnorm(x + r)·w)` over rows of length `w.len()` (`reft_add_rmsnorm_fwd`).
pub fn add_rmsnorm_fwd<T: Elem>(x: &[T], r: &[T], w: &[T], eps: f32) -> (Vec<T>, Vec<T>) {
    let d = w.len();
    assert!(d > 0 && x.len() % d == 0 && r.len() == x.len(), "rows");
    let rows = x.len() / d;
    let (mut s, mut y) = (vec![T::default(); x.len()], vec![T::default(); x.len()]);
    let (g, b) = crate::row_launch(rows);
    unsafe { (T::KERNELS.add_rms)(g, b, x.as_ptr(), r.as_ptr(), w.as_ptr(), s.as_mut_ptr(), y.as_mut_ptr(), rows, i32_of(d, "d"), eps) };
    (s, y)
}

/// The packed q/k/v projection rows `rows` `[b, t, (nh + 2·nkv)·hd]` as rotated queries
/// `[b, nh, t, hd]`, rotated keys and values `[b, nkv, t, hd]` (`heads` = `[nh, nkv, hd]`).
pub fn qkv_heads<T: Elem>(rows: &[T], cos: &[T], sin: &[T], b: usize, t: usize, heads: [usize; 3], grid: Option<u32>) -> (Vec<T>, Vec<T>, Vec<T>) {
    let [nh, nkv, hd] = heads;
    assert!(rows.len() == b * t * (nh + 2 * nkv) * hd && cos.len() == b * t * hd && sin.len() == cos.len() && hd % 2 == 0, "qkv shapes");
    let mut rows = rows.to_vec();
    let (mut q, mut k, mut v) = (vec![T::default(); b * nh * t * hd], vec![T::default(); b * nkv * t * hd], vec![T::default(); b * nkv * t * hd]);
    qkv_launch(&mut rows, &mut q, &mut k, &mut v, cos, sin, t, heads, false, (t, 0), grid);
    (q, k, v)
}

/// [`qkv_heads`] with the keys and values written into cache buffers `kc`, `vc`
/// `[b, nkv, kcap, hd]` from position `koff` on (the rest left as it is); returns the queries.
#[allow(clippy::too_many_arguments)]
pub fn qkv_heads_into_cache<T: Elem>(rows: &[T], cos: &[T], sin: &[T], b: usize, t: usize, heads: [usize; 3], kc: &mut [T], vc: &mut [T], kcap: usize, koff: usize, grid: Option<u32>) -> Vec<T> {
    let [nh, nkv, hd] = heads;
    assert!(rows.len() == b * t * (nh + 2 * nkv) * hd && kc.len() == b * nkv * kcap * hd && vc.len() == kc.len() && koff + t <= kcap, "qkv cache shapes");
    let mut rows = rows.to_vec();
    let mut q = vec![T::default(); b * nh * t * hd];
    qkv_launch(&mut rows, &mut q, kc, vc, cos, sin, t, heads, false, (kcap, koff), grid);
    q
}

/// The inverse of [`qkv_heads`] for gradients: `[rope⁻¹(dq) | rope⁻¹(dk) | dv]` as rows.
pub fn qkv_rows_grad<T: Elem>(dq: &[T], dk: &[T], dv: &[T], cos: &[T], sin: &[T], b: usize, t: usize, heads: [usize; 3], grid: Option<u32>) -> Vec<T> {
    let [nh, nkv, hd] = heads;
    assert!(dq.len() == b * nh * t * hd && dk.len() == b * nkv * t * hd && dv.len() == dk.len() && cos.len() == b * t * hd, "qkv gradient shapes");
    let mut rows = vec![T::default(); b * t * (nh + 2 * nkv) * hd];
    let (mut q, mut k, mut v) = (dq.to_vec(), dk.to_vec(), dv.to_vec());
    qkv_launch(&mut rows, &mut q, &mut k, &mut v, cos, sin, t, heads, true, (t, 0), grid);
    rows
}

#[allow(clippy::too_many_arguments)]
fn qkv_launch<T: Elem>(rows: &mut [T], q: &mut [T], k: &mut [T], v: &mut [T], cos: &[T], sin: &[T], t: usize, heads: [usize; 3], inverse: bool, (kcap, koff): (usize, usize), grid: Option<u32>) {
    let [nh, nkv, hd] = heads;
    let n = rows.len();
    let (g, b) = crate::elementwise_launch(n);
    unsafe {
        (T::KERNELS.qkv_rows)(
            grid.unwrap_or(g),
            b,
            rows.as_mut_ptr(),
            q.as_mut_ptr(),
            k.as_mut_ptr(),
            v.as_mut_ptr(),
            cos.as_ptr(),
            sin.as_ptr(),
            n,
            i32_of(t, "t"),
            i32_of(nh, "nh"),
            i32_of(nkv, "nkv"),
            i32_of(hd, "hd"),
            inverse as i32,
            i32_of(kcap, "kcap"),
            i32_of(koff, "koff"),
        )
    };
}

/// `h` `[nh, d]` with the rows `rows` (unique) moved by `delta` `[rows, d]`: the copy the CUDA
/// path makes, then the kernel.
pub fn rows_add<T: Elem>(h: &[T], delta: &[T], rows: &[u32], d: usize, grid: Option<u32>) -> Vec<T> {
    assert!(h.len() % d == 0 && delta.len() == rows.len() * d, "rows add shapes");
    let mut out = h.to_vec();
    let n = delta.len();
    let (g, b) = crate::elementwise_launch(n);
    unsafe { (T::KERNELS.rows_add)(grid.unwrap_or(g), b, h.as_ptr(), delta.as_ptr(), rows.as_ptr(), out.as_mut_ptr(), n, i32_of(d, "d"), h.len() / d) };
    out
}

/// [`qkv_heads_into_cache`] for one position by `reft_qkv_rows_at`, the cache position read
/// from `info[0]` (a CUDA graph's device-side argument).
#[allow(clippy::too_many_arguments)]
pub fn qkv_heads_into_cache_at<T: Elem>(rows: &[T], cos: &[T], sin: &[T], b: usize, heads: [usize; 3], kc: &mut [T], vc: &mut [T], kcap: usize, info: &[i32; 2]) -> Vec<T> {
    let [nh, nkv, hd] = heads;
    assert!(rows.len() == b * (nh + 2 * nkv) * hd && kc.len() == b * nkv * kcap * hd && vc.len() == kc.len() && (info[0] as usize) < kcap, "qkv cache shapes");
    let mut rows = rows.to_vec();
    let mut q = vec![T::default(); b * nh * hd];
    let n = rows.len();
    let (g, bl) = crate::elementwise_launch(n);
    unsafe {
        (T::KERNELS.qkv_at)(g, bl, rows.as_mut_ptr(), q.as_mut_ptr(), kc.as_mut_ptr(), vc.as_mut_ptr(), cos.as_ptr(), sin.as_ptr(), n, i32_of(nh, "nh"), i32_of(nkv, "nkv"), i32_of(hd, "hd"), i32_of(kcap, "kcap"), info.as_ptr())
    };
    q
}

/// [`decode_attn`] by `reft_decode_attn_at`: the mask laid out `[b, kcap]` and the number of
/// keys read from `info[1]`.
#[allow(clippy::too_many_arguments)]
pub fn decode_attn_at<T: Elem>(q: &[T], k: &[T], v: &[T], mask: &[f32], dims: [usize; 4], kcap: usize, hd: usize, scale: f32, info: &[i32; 2]) -> Vec<T> {
    let [b, nkv, g, qd] = dims;
    assert!(qd == hd && q.len() == b * nkv * g * hd && k.len() == b * nkv * kcap * hd && v.len() == k.len() && mask.len() == b * kcap && (info[1] as usize) <= kcap && hd <= 256, "decode attention shapes");
    let rows = b * nkv * g;
    let mut out = vec![T::default(); q.len()];
    let (gr, bl) = crate::row_launch(rows);
    unsafe {
        (T::KERNELS.attn_at)(gr, bl, q.as_ptr(), k.as_ptr(), v.as_ptr(), mask.as_ptr(), out.as_mut_ptr(), rows, i32_of(g, "g"), i32_of(nkv, "nkv"), i32_of(kcap, "kcap"), i32_of(hd, "hd"), scale, info.as_ptr())
    };
    out
}

/// Rows `ids` of the embedding `table` `[vocab, d]` (`reft_embed_rows`): `[ids, d]`.
pub fn embed_rows<T: Elem>(table: &[T], ids: &[u32], d: usize) -> Vec<T> {
    assert!(d > 0 && table.len() % d == 0 && ids.iter().all(|&i| (i as usize) < table.len() / d), "embedding rows");
    let n = ids.len() * d;
    let mut out = vec![T::default(); n];
    let (g, b) = crate::elementwise_launch(n);
    unsafe { (T::KERNELS.embed)(g, b, table.as_ptr(), ids.as_ptr(), out.as_mut_ptr(), n, i32_of(d, "d")) };
    out
}

/// The first index of each row's largest value (`reft_argmax_rows`), rows of length `n`.
pub fn argmax_rows<T: Elem>(x: &[T], n: usize) -> Vec<u32> {
    assert!(n > 0 && x.len() % n == 0, "argmax rows");
    let rows = x.len() / n;
    let mut out = vec![0u32; rows];
    let (g, b) = crate::row_launch(rows);
    unsafe { (T::KERNELS.argmax)(g, b, x.as_ptr(), out.as_mut_ptr(), rows, i32_of(n, "n")) };
    out
}

extern "C" {
    fn reft_emu_sum_squares_f32(x: *const f32, n: usize, out: *mut f32, slot: usize);
}

/// `Σ x²` by one warp (`reft_sum_squares_f32`), written to `out[slot]`.
pub fn sum_squares(x: &[f32], out: &mut [f32], slot: usize) {
    assert!(slot < out.len(), "slot");
    unsafe { reft_emu_sum_squares_f32(x.as_ptr(), x.len(), out.as_mut_ptr(), slot) };
}

extern "C" {
    fn reft_emu_adamw_f32(g: u32, b: u32, p: *mut f32, gr: *const f32, m: *mut f32, v: *mut f32, n: usize, h: *const f32);
}

/// One AdamW step in place on `p`, `m` and `v` from the gradient `g` (`reft_adamw_f32`); `h`
/// holds the kernel's scalar arguments in its order (`gscale` … `decay`).
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &[f32; 10], grid: Option<u32>) {
    assert!(g.len() == p.len() && m.len() == p.len() && v.len() == p.len(), "parameter, gradient and moments");
    let (gr, b) = crate::elementwise_launch(p.len());
    unsafe { reft_emu_adamw_f32(grid.unwrap_or(gr), b, p.as_mut_ptr(), g.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr(), p.len(), h.as_ptr()) };
}

extern "C" {
    fn reft_emu_dropout_mask_f32(g: u32, b: u32, out: *mut f32, n: usize, key: u64, threshold: u32, scale: f32);
}

/// The dropout keep mask of `n` elements (`reft_dropout_mask_f32`): `scale` or 0 per element.
pub fn dropout_mask(n: usize, key: u64, threshold: u32, scale: f32, grid: Option<u32>) -> Vec<f32> {
    let mut out = vec![0f32; n];
    let (gr, b) = crate::elementwise_launch(n);
    unsafe { reft_emu_dropout_mask_f32(grid.unwrap_or(gr), b, out.as_mut_ptr(), n, key, threshold, scale) };
    out
}
