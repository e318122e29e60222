// Fused CUDA kernels with their backward for the ops that dominate a ReFT step after the GEMMs:
// the attention softmax (scale, additive mask, softmax in one pass), RMSNorm, RoPE and SwiGLU.
//
// Built from candle's primitives, each of these is 5 to 15 kernels with an f32 copy of the
// tensor per step (ops/attach.rs); here each direction is one kernel that reads its inputs once
// and writes its output once, accumulating in f32 whatever the storage type.
//
// The same source compiles two ways: with nvcc to PTX for the GPU (build.rs, feature `ptx`), and
// as C++ against `emu.h` (feature `emu`), which runs every CUDA thread as a host thread with real
// warp shuffles, so the CPU tests prove these kernels, launch geometry included, against the
// CPU ops (crates/reft-core/tests/cuda_kernels.rs). Keep to what emu.h provides: warp shuffles,
// no shared memory, no __syncthreads.
//
// Row kernels give each row to one warp (blockDim.x = 32 × warps); elementwise kernels use a
// grid-stride loop. Rows are indexed in size_t: a [8, 32, 512, 512] score tensor has 67M
// elements, and larger shapes pass 2^31.

#ifndef REFT_CUDA_EMU
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#endif

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half(x); }

/// Rounds through the storage type: where PyTorch rounds an intermediate, so do we.
template <typename T> __device__ __forceinline__ float round_t(float x) { return to_f(from_f<T>(x)); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}

/// The row this warp owns; every lane of a warp gets the same row, so a warp leaves as a whole.
__device__ __forceinline__ size_t warp_row() { return ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; }
__device__ __forceinline__ int lane_id() { return threadIdx.x % 32; }

// ------------------------------------------------------------------ attention softmax
// p = softmax(scale·s + mask) over the last dim of s = [b, h, q, k]; mask is f32 [b, 1, mrows, k]
// with mrows 1 (one key mask per row) or q (causal and padding per query).
template <typename T>
__device__ void attn_softmax_fwd(const T* s, const float* mask, T* p, size_t rows, int k, int q, int heads,
                                 int mrows, float scale) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  size_t bi = row / ((size_t)heads * q), qi = row % q;
  const T* sr = s + row * k;
  const float* mr = mask + (bi * mrows + (mrows == 1 ? 0 : qi)) * k;
  T* pr = p + row * k;
  float mx = -INFINITY;
  for (int j = lane; j < k; j += 32) mx = fmaxf(mx, to_f(sr[j]) * scale + mr[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j < k; j += 32) sum += expf(to_f(sr[j]) * scale + mr[j] - mx);
  float inv = 1.f / warp_sum(sum);
  for (int j = lane; j < k; j += 32) pr[j] = from_f<T>(expf(to_f(sr[j]) * scale + mr[j] - mx) * inv);
}

// ds = scale · p ⊙ (g − Σ_k g ⊙ p), per row.
template <typename T>
__device__ void attn_softmax_bwd(const T* p, const T* g, T* ds, size_t rows, int k, float scale) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  const T* pr = p + row * k;
  const T* gr = g + row * k;
  float dot = 0.f;
  for (int j = lane; j < k; j += 32) dot += to_f(pr[j]) * to_f(gr[j]);
  dot = warp_sum(dot);
  for (int j = lane; j < k; j += 32) ds[row * k + j] = from_f<T>(scale * to_f(pr[j]) * (to_f(gr[j]) - dot));
}

// ------------------------------------------------------------------ RMSNorm, frozen gain
// 1 / sqrt(mean(x²) + eps) of one row, reduced over the warp (every lane gets it).
template <typename T>
__device__ __forceinline__ float inv_rms(const T* xr, int d, float eps, int lane) {
  float ss = 0.f;
  for (int j = lane; j < d; j += 32) { float v = to_f(xr[j]); ss += v * v; }
  return 1.f / sqrtf(warp_sum(ss) / d + eps);
}

// y = w · round(x / rms(x)), as HF Llama rounds the normalised row before the gain.
template <typename T>
__device__ void rmsnorm_fwd(const T* x, const T* w, T* y, size_t rows, int d, float eps) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  const T* xr = x + row * d;
  float inv = inv_rms(xr, d, eps, lane);
  for (int j = lane; j < d; j += 32) y[row * d + j] = from_f<T>(to_f(w[j]) * round_t<T>(to_f(xr[j]) * inv));
}

// dx = r · (g⊙w − x̂ · mean(g⊙w⊙x̂)), r = 1/rms, x̂ = x·r; with `res` (the residual branch's
// gradient, or null) dx = round(that) + res, as the separate add would give it.
template <typename T>
__device__ void rmsnorm_bwd(const T* x, const T* w, const T* g, T* dx, size_t rows, int d, float eps,
                            const T* res = nullptr) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  const T* xr = x + row * d;
  const T* gr = g + row * d;
  float inv = inv_rms(xr, d, eps, lane);
  float dot = 0.f;
  for (int j = lane; j < d; j += 32) dot += to_f(gr[j]) * to_f(w[j]) * to_f(xr[j]) * inv;
  dot = warp_sum(dot) / d;
  for (int j = lane; j < d; j += 32) {
    float xh = to_f(xr[j]) * inv;
    float v = inv * (to_f(gr[j]) * to_f(w[j]) - xh * dot);
    dx[row * d + j] = from_f<T>(res ? round_t<T>(v) + to_f(res[row * d + j]) : v);
  }
}

// ------------------------------------------------------------------ RoPE, rotate_half layout
// x = [b, h, t, hd], tables cos/sin = [b, 1, t, hd]. Forward: x·cos + rotate_half(x)·sin with
// rotate_half(x) = [−x₂, x₁]; inverse (the backward): g·cos + rotate_halfᵀ(g·sin) with
// rotate_halfᵀ(z) = [z₂, −z₁]. `layout` bit 1: x is in the projections' row layout
// [b, t, h, hd] instead; bit 2: y is written in it. The heads' transposes around the rotation
// (a copy of q and k each way) are then part of it.
template <typename T>
__device__ void rope(const T* x, const T* cos, const T* sin, T* y, size_t n, int heads, int t, int hd, int inverse,
                     int layout) {
  int half = hd / 2;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
    int i = idx % hd;
    size_t row = idx / hd;
    size_t ti = row % t, hi = (row / t) % heads, bi = row / ((size_t)t * heads);
    size_t tab = (bi * t + ti) * hd;
    size_t rows_at = ((bi * t + ti) * heads + hi) * hd + i;
    size_t xi = (layout & 1) ? rows_at : idx;
    size_t yi = (layout & 2) ? rows_at : idx;
    float c = to_f(cos[tab + i]);
    float out;
    if (!inverse) {
      float rot = i < half ? -to_f(x[xi + half]) : to_f(x[xi - half]);
      out = to_f(x[xi]) * c + rot * to_f(sin[tab + i]);
    } else if (i < half) {
      out = to_f(x[xi]) * c + to_f(x[xi + half]) * to_f(sin[tab + i + half]);
    } else {
      out = to_f(x[xi]) * c - to_f(x[xi - half]) * to_f(sin[tab + i - half]);
    }
    y[yi] = from_f<T>(out);
  }
}

// ------------------------------------------------------------------ decoding attention
// out = softmax(scale·q·kᵀ + mask)·v for few query rows against one key mask per sequence (a
// decoding step), one warp per query row, in f32 with an online softmax. q [b, nkv, g, hd]
// (g query rows per key head, contiguous); k and v [b, nkv, tk, hd] whose heads lie `kcap`
// positions apart (the reserved cache's capacity, or tk); mask f32 [b, mstride] of which the
// first tk columns are read (mstride = tk but in a CUDA graph's fixed layout). Each lane holds
// head dims lane, lane + 32, … (hd ≤ 256). Unfused it was a batched GEMM, the softmax kernel
// and another batched GEMM, with the scores and probabilities rounded to the storage type.
template <typename T>
__device__ void decode_attn(const T* q, const T* k, const T* v, const float* mask, T* out, size_t rows, int g,
                            int nkv, int tk, int kcap, int hd, float scale, int mstride) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  size_t bh = row / g, bi = bh / nkv;
  const T* qr = q + row * hd;
  const T* kb = k + bh * (size_t)kcap * hd;
  const T* vb = v + bh * (size_t)kcap * hd;
  const float* mr = mask + bi * mstride;
  int nd = (hd + 31) / 32;
  float qv[8], acc[8];
  for (int i = 0; i < 8; i++) {
    int d = lane + 32 * i;
    qv[i] = (i < nd && d < hd) ? to_f(qr[d]) : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < tk; j++) {
    const T* kr = kb + (size_t)j * hd;
    const T* vr = vb + (size_t)j * hd;
    float s = 0.f;
    for (int i = 0; i < nd; i++) {
      int d = lane + 32 * i;
      if (d < hd) s += qv[i] * to_f(kr[d]);
    }
    s = warp_sum(s) * scale + mr[j];
    float mn = fmaxf(m, s);
    float corr = expf(m - mn), p = expf(s - mn);
    l = l * corr + p;
    for (int i = 0; i < nd; i++) {
      int d = lane + 32 * i;
      if (d < hd) acc[i] = acc[i] * corr + p * to_f(vr[d]);
    }
    m = mn;
  }
  float inv = 1.f / l;
  for (int i = 0; i < nd; i++) {
    int d = lane + 32 * i;
    if (d < hd) out[row * hd + d] = from_f<T>(acc[i] * inv);
  }
}

// ------------------------------------------------------------------ residual add + RMSNorm
// s = round(x + r) (the residual add, rounded as candle's add rounds) and y = rmsnorm(s)·w as
// `rmsnorm_fwd` computes it, in one pass: each lane reads back only the sums it wrote, so the
// result equals the add followed by `rmsnorm_fwd` to the bit.
template <typename T>
__device__ void add_rmsnorm_fwd(const T* x, const T* r, const T* w, T* s, T* y, size_t rows, int d, float eps) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  T* sr = s + row * d;
  for (int j = lane; j < d; j += 32) sr[j] = from_f<T>(to_f(x[row * d + j]) + to_f(r[row * d + j]));
  float inv = inv_rms(sr, d, eps, lane);
  for (int j = lane; j < d; j += 32) y[row * d + j] = from_f<T>(to_f(w[j]) * round_t<T>(to_f(sr[j]) * inv));
}

// ------------------------------------------------------------------ packed q/k/v rows <-> rotated heads
// `rows` [b, t, W], W = (nh + 2·nkv)·hd: one GEMM's output with the q, k and v weights packed.
// Forward (inverse = 0): q = RoPE(the first nh·hd columns) as [b, nh, t, hd], k = RoPE(the next
// nkv·hd) as [b, nkv, t, hd], v = the last nkv·hd transposed to [b, nkv, t, hd]; the arithmetic
// is `rope`'s. Inverse: rows = [rope⁻¹(dq) | rope⁻¹(dk) | dv] from the three in heads layout, the
// packed GEMM's input gradient. One thread per element of `rows` (n = b·t·W); unpacked it was
// three GEMMs, two rotations and a transposing copy each way (plus two adds backward). The keys
// and values may go into a reserved cache instead: heads `kcap` positions apart, from position
// `koff` on (kcap = t, koff = 0 otherwise).
template <typename T>
__device__ void qkv_rows(T* rows, T* q, T* k, T* v, const T* cos, const T* sin, size_t n, int t, int nh, int nkv,
                         int hd, int inverse, int kcap, int koff) {
  int half = hd / 2;
  size_t w = (size_t)(nh + 2 * nkv) * hd;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
    size_t bt = idx / w;
    int c = (int)(idx % w);
    int head = c / hd, i = c % hd;
    size_t ti = bt % t, bi = bt / t;
    int part = head < nh ? 0 : head < nh + nkv ? 1 : 2;  // q, k or v
    T* sec = part == 0 ? q : part == 1 ? k : v;
    int heads = part == 0 ? nh : nkv, hh = head - (part == 0 ? 0 : part == 1 ? nh : nh + nkv);
    size_t hi = part == 0 ? ((bi * heads + hh) * t + ti) * hd + i : ((bi * heads + hh) * kcap + koff + ti) * hd + i;
    if (part == 2) {
      if (inverse) rows[idx] = v[hi];
      else v[hi] = rows[idx];
      continue;
    }
    size_t tab = bt * hd;
    float cs = to_f(cos[tab + i]);
    if (!inverse) {
      float rot = i < half ? -to_f(rows[idx + half]) : to_f(rows[idx - half]);
      sec[hi] = from_f<T>(to_f(rows[idx]) * cs + rot * to_f(sin[tab + i]));
    } else if (i < half) {
      rows[idx] = from_f<T>(to_f(sec[hi]) * cs + to_f(sec[hi + half]) * to_f(sin[tab + i + half]));
    } else {
      rows[idx] = from_f<T>(to_f(sec[hi]) * cs - to_f(sec[hi - half]) * to_f(sin[tab + i - half]));
    }
  }
}

// ------------------------------------------------------------------ SwiGLU
// y = round(silu(a)) · u, as PyTorch rounds the activation before the product. `f` = 0: a and u
// are separate [n] arrays; `f` > 0: both point at one packed [n/f, 2f] array, the output of the
// packed gate/up GEMM, whose rows hold the gate's f values and then up's.
__device__ __forceinline__ size_t swiglu_at(size_t i, size_t f) { return f ? (i / f) * 2 * f + i % f : i; }

template <typename T>
__device__ void swiglu_fwd(const T* a, const T* u, T* y, size_t n, size_t f) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t ia = swiglu_at(i, f), iu = f ? ia + f : i;
    float v = to_f(a[ia]);
    y[i] = from_f<T>(round_t<T>(v / (1.f + expf(-v))) * to_f(u[iu]));
  }
}

// dgate = g·u·σ(a)(1 + a(1 − σ(a))), dup = g·silu(a), into d (2n values): [dgate; dup] when
// `f` = 0, else packed rows [dgate | dup] like the input, the packed GEMM's gradient.
template <typename T>
__device__ void swiglu_bwd(const T* a, const T* u, const T* g, T* d, size_t n, size_t f) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t ia = swiglu_at(i, f), iu = f ? ia + f : i;
    float v = to_f(a[ia]), gi = to_f(g[i]);
    float sig = 1.f / (1.f + expf(-v));
    float silu = v * sig;
    d[f ? ia : i] = from_f<T>(gi * to_f(u[iu]) * (sig + silu * (1.f - sig)));
    d[f ? ia + f : n + i] = from_f<T>(gi * silu);
  }
}

// ------------------------------------------------------------------ rows add (an intervention's edit)
// out[rows[j]·d + c] = h[…] + delta[j·d + c] for the n = |rows|·d edited elements of `out`, a copy
// of h `[nh, d]` made by the caller. Rows are unique (batch.rs de-duplicates them), so no two
// threads write one element. One thread per edited element: candle's index_add gives a thread
// to each column and loops over the rows, about 100 µs for 224 rows on the 1.1B anchor shape.
template <typename T>
__device__ void rows_add(const T* h, const T* delta, const unsigned* rows, T* out, size_t n, int d, size_t nh) {
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
    size_t r = rows[idx / d];
    if (r >= nh) continue;  // the caller checks; never write out of bounds
    size_t o = r * d + idx % d;
    out[o] = from_f<T>(to_f(h[o]) + to_f(delta[idx]));
  }
}

// ------------------------------------------------------------------ sum of squares (gradient norm)
// out[slot] = Σ x² over one gradient, by one warp (launched as 1 block of 32 threads): each of a
// step's gradients writes its own slot of one buffer, and one copy brings them all to the host.
// Op by op it was a square, a sum and a cast per gradient, then a concatenation.
extern "C" __global__ void reft_sum_squares_f32(const float* x, size_t n, float* out, size_t slot) {
  int lane = lane_id();
  float acc = 0.f;
  for (size_t i = lane; i < n; i += 32) acc += x[i] * x[i];
  acc = warp_sum(acc);
  if (lane == 0) out[slot] = acc;
}

// ------------------------------------------------------------------ AdamW (f32 parameters)
// One step of AdamW on a parameter, in place, computed as `train.rs` computes it op by op (each
// product and sum rounded to f32 in the same order; `mul_rn`/`add_rn` keep nvcc from fusing
// them into FMAs): `g·gscale` (the clipping coefficient), `m·β₁ + g(1 − β₁)`,
// `v·β₂ + g²(1 − β₂)`, `p·decay − lr·(m/bc₁)/(√v/√bc₂ + ε)` with `decay = 1 − lr·wd` or 1.
// The op-by-op update is about 15 of candle's kernels per parameter; this is one.
__device__ __forceinline__ float mul_rn(float a, float b) {
#ifdef REFT_CUDA_EMU
  return a * b;
#else
  return __fmul_rn(a, b);
#endif
}
__device__ __forceinline__ float add_rn(float a, float b) {
#ifdef REFT_CUDA_EMU
  return a + b;
#else
  return __fadd_rn(a, b);
#endif
}

extern "C" __global__ void reft_adamw_f32(float* p, const float* g, float* m, float* v, size_t n, float gscale,
                                          float beta1, float one_minus_beta1, float beta2, float one_minus_beta2,
                                          float inv_bc1, float inv_sqrt_bc2, float eps, float lr, float decay) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float gi = mul_rn(g[i], gscale);
    float mi = add_rn(mul_rn(m[i], beta1), mul_rn(gi, one_minus_beta1));
    float vi = add_rn(mul_rn(v[i], beta2), mul_rn(mul_rn(gi, gi), one_minus_beta2));
    float denom = add_rn(mul_rn(sqrtf(vi), inv_sqrt_bc2), eps);
    float update = mul_rn(mi, inv_bc1) / denom;
    p[i] = mul_rn(p[i], decay) - mul_rn(update, lr);
    m[i] = mi;
    v[i] = vi;
  }
}

// ------------------------------------------------------------------ dropout keep mask
// Inverted dropout's mask from a counter-based generator: element i is `scale` when the top 24
// bits of SplitMix64(key + (i + 1)·γ) fall below `threshold` (the keep probability times 2²⁴),
// else 0. Integer arithmetic only, so reft-core's host function `interventions::common::keep_bit`
// gives the same bits; the host draws one key per mask instead of one number per element.
extern "C" __global__ void reft_dropout_mask_f32(float* out, size_t n, unsigned long long key, unsigned threshold,
                                                 float scale) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned long long z = key + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    out[i] = (unsigned)(z >> 40) < threshold ? scale : 0.f;
  }
}

// ------------------------------------------------------------------ entry points per dtype
#define REFT_KERNELS(T, SUF)                                                                                   \
  extern "C" __global__ void reft_attn_softmax_fwd_##SUF(const T* s, const float* mask, T* p, size_t rows,     \
                                                         int k, int q, int heads, int mrows, float scale) {    \
    attn_softmax_fwd<T>(s, mask, p, rows, k, q, heads, mrows, scale);                                          \
  }                                                                                                            \
  extern "C" __global__ void reft_attn_softmax_bwd_##SUF(const T* p, const T* g, T* ds, size_t rows, int k,    \
                                                         float scale) {                                        \
    attn_softmax_bwd<T>(p, g, ds, rows, k, scale);                                                             \
  }                                                                                                            \
  extern "C" __global__ void reft_rmsnorm_fwd_##SUF(const T* x, const T* w, T* y, size_t rows, int d,          \
                                                    float eps) {                                               \
    rmsnorm_fwd<T>(x, w, y, rows, d, eps);                                                                     \
  }                                                                                                            \
  extern "C" __global__ void reft_rmsnorm_bwd_##SUF(const T* x, const T* w, const T* g, T* dx, size_t rows,    \
                                                    int d, float eps) {                                        \
    rmsnorm_bwd<T>(x, w, g, dx, rows, d, eps);                                                                 \
  }                                                                                                            \
  extern "C" __global__ void reft_rmsnorm_bwd_add_##SUF(const T* x, const T* w, const T* g, const T* res,       \
                                                        T* dx, size_t rows, int d, float eps) {                \
    rmsnorm_bwd<T>(x, w, g, dx, rows, d, eps, res);                                                            \
  }                                                                                                            \
  extern "C" __global__ void reft_rope_##SUF(const T* x, const T* cos, const T* sin, T* y, size_t n,           \
                                             int heads, int t, int hd, int inverse, int layout) {              \
    rope<T>(x, cos, sin, y, n, heads, t, hd, inverse, layout);                                                 \
  }                                                                                                            \
  extern "C" __global__ void reft_swiglu_fwd_##SUF(const T* a, const T* u, T* y, size_t n, size_t f) {        \
    swiglu_fwd<T>(a, u, y, n, f);                                                                              \
  }                                                                                                            \
  extern "C" __global__ void reft_swiglu_bwd_##SUF(const T* a, const T* u, const T* g, T* d, size_t n,        \
                                                   size_t f) {                                                 \
    swiglu_bwd<T>(a, u, g, d, n, f);                                                                           \
  }                                                                                                            \
  extern "C" __global__ void reft_decode_attn_##SUF(const T* q, const T* k, const T* v, const float* mask,      \
                                                   T* out, size_t rows, int g, int nkv, int tk, int kcap,      \
                                                   int hd, float scale) {                                      \
    decode_attn<T>(q, k, v, mask, out, rows, g, nkv, tk, kcap, hd, scale, tk);                                 \
  }                                                                                                            \
  extern "C" __global__ void reft_add_rmsnorm_fwd_##SUF(const T* x, const T* r, const T* w, T* s, T* y,        \
                                                        size_t rows, int d, float eps) {                       \
    add_rmsnorm_fwd<T>(x, r, w, s, y, rows, d, eps);                                                           \
  }                                                                                                            \
  extern "C" __global__ void reft_qkv_rows_##SUF(T* rows, T* q, T* k, T* v, const T* cos, const T* sin,         \
                                                 size_t n, int t, int nh, int nkv, int hd, int inverse,        \
                                                 int kcap, int koff) {                                         \
    qkv_rows<T>(rows, q, k, v, cos, sin, n, t, nh, nkv, hd, inverse, kcap, koff);                              \
  }                                                                                                            \
  extern "C" __global__ void reft_rows_add_##SUF(const T* h, const T* delta, const unsigned* rows, T* out,     \
                                                 size_t n, int d, size_t nh) {                                 \
    rows_add<T>(h, delta, rows, out, n, d, nh);                                                                \
  }

REFT_KERNELS(float, f32)
REFT_KERNELS(__nv_bfloat16, bf16)
REFT_KERNELS(__half, f16)

#include "decode.cu"
