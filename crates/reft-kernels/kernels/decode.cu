// Kernels of the static decoding step (reft-core's `decode/`), included by fused.cu after its
// helpers: the token embeddings' gather, the greedy argmax over the logits, and the q/k/v split
// and decoding attention with the per-step arguments read from the device (for a CUDA graph).
// With them a decoding step runs from the uploaded token ids to the next ids without a candle op.

// ------------------------------------------------------------------ embedding rows
// out[r·d + c] = table[ids[r]·d + c] for n = rows·d elements (candle's index_select, without
// the tensor it allocates).
template <typename T>
__device__ void embed_rows(const T* table, const unsigned* ids, T* out, size_t n, int d) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t r = i / d;
    out[i] = table[(size_t)ids[r] * d + i % d];
  }
}

// ------------------------------------------------------------------ argmax per row
// out[r] = the first index of the largest value of row r (x [rows, n]), as the CPU's greedy
// pick: a NaN never wins, ties go to the smaller index. One warp per row; the index travels
// through the float shuffle as a float, exact below 2^24 (vocabularies are far smaller).
template <typename T>
__device__ void argmax_rows(const T* x, unsigned* out, size_t rows, int n) {
  size_t row = warp_row();
  if (row >= rows) return;
  int lane = lane_id();
  const T* xr = x + row * (size_t)n;
  float best = -INFINITY, at = (float)n;
  for (int j = lane; j < n; j += 32) {
    float v = to_f(xr[j]);
    if (v > best || (at == (float)n && !(v != v))) {
      best = v;
      at = (float)j;
    }
  }
  for (int m = 16; m > 0; m >>= 1) {
    float ob = __shfl_xor_sync(0xffffffffu, best, m), oa = __shfl_xor_sync(0xffffffffu, at, m);
    if (ob > best || (ob == best && oa < at)) {
      best = ob;
      at = oa;
    }
  }
  if (lane == 0) out[row] = at >= (float)n ? 0u : (unsigned)at;
}

// ------------------------------------------------------------------ a CUDA graph's fixed arguments
// A captured graph replays its launches with the arguments they were captured with, so the two
// that change every step come from device memory instead: info = {cache position, keys}, which
// the step uploads with its ids. The key mask is then laid out [b, kcap] (a fixed stride).
template <typename T>
__device__ void qkv_rows_at(T* rows, T* q, T* k, T* v, const T* cos, const T* sin, size_t n, int nh, int nkv, int hd,
                            int kcap, const int* info) {
  qkv_rows<T>(rows, q, k, v, cos, sin, n, 1, nh, nkv, hd, 0, kcap, info[0]);
}

template <typename T>
__device__ void decode_attn_at(const T* q, const T* k, const T* v, const float* mask, T* out, size_t rows, int g,
                               int nkv, int kcap, int hd, float scale, const int* info) {
  decode_attn<T>(q, k, v, mask, out, rows, g, nkv, info[1], kcap, hd, scale, kcap);
}

#define REFT_DECODE_KERNELS(T, SUF)                                                                            \
  extern "C" __global__ void reft_qkv_rows_at_##SUF(T* rows, T* q, T* k, T* v, const T* cos, const T* sin,      \
                                                    size_t n, int nh, int nkv, int hd, int kcap,               \
                                                    const int* info) {                                         \
    qkv_rows_at<T>(rows, q, k, v, cos, sin, n, nh, nkv, hd, kcap, info);                                       \
  }                                                                                                            \
  extern "C" __global__ void reft_decode_attn_at_##SUF(const T* q, const T* k, const T* v, const float* mask,   \
                                                      T* out, size_t rows, int g, int nkv, int kcap, int hd,  \
                                                      float scale, const int* info) {                         \
    decode_attn_at<T>(q, k, v, mask, out, rows, g, nkv, kcap, hd, scale, info);                               \
  }                                                                                                            \
  extern "C" __global__ void reft_embed_rows_##SUF(const T* table, const unsigned* ids, T* out, size_t n,      \
                                                   int d) {                                                    \
    embed_rows<T>(table, ids, out, n, d);                                                                      \
  }                                                                                                            \
  extern "C" __global__ void reft_argmax_rows_##SUF(const T* x, unsigned* out, size_t rows, int n) {           \
    argmax_rows<T>(x, out, rows, n);                                                                           \
  }

REFT_DECODE_KERNELS(float, f32)
REFT_DECODE_KERNELS(__nv_bfloat16, bf16)
REFT_DECODE_KERNELS(__half, f16)
