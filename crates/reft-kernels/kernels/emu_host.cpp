// Host entry points for the emulated kernels (emu.h): one `reft_emu_<kernel>_<dtype>` per kernel,
// taking the launch geometry the Rust side chose (the same function picks it for the GPU) and
// the kernel's own arguments. Compiled only with the crate's `emu` feature, for tests.
#include "emu.h"
#include "fused.cu"

#define EMU_ENTRIES(T, SUF)                                                                               \
  extern "C" void reft_emu_attn_softmax_fwd_##SUF(unsigned g, unsigned b, const T* s, const float* m, T* p, \
                                                  size_t rows, int k, int q, int heads, int mrows,          \
                                                  float scale) {                                            \
    emu::launch(g, b, [&] { reft_attn_softmax_fwd_##SUF(s, m, p, rows, k, q, heads, mrows, scale); });      \
  }                                                                                                         \
  extern "C" void reft_emu_attn_softmax_bwd_##SUF(unsigned g, unsigned b, const T* p, const T* gr, T* ds,   \
                                                  size_t rows, int k, float scale) {                        \
    emu::launch(g, b, [&] { reft_attn_softmax_bwd_##SUF(p, gr, ds, rows, k, scale); });                     \
  }                                                                                                         \
  extern "C" void reft_emu_rmsnorm_fwd_##SUF(unsigned g, unsigned b, const T* x, const T* w, T* y,          \
                                             size_t rows, int d, float eps) {                               \
    emu::launch(g, b, [&] { reft_rmsnorm_fwd_##SUF(x, w, y, rows, d, eps); });                              \
  }                                                                                                         \
  extern "C" void reft_emu_rmsnorm_bwd_##SUF(unsigned g, unsigned b, const T* x, const T* w, const T* gr,   \
                                             T* dx, size_t rows, int d, float eps) {                        \
    emu::launch(g, b, [&] { reft_rmsnorm_bwd_##SUF(x, w, gr, dx, rows, d, eps); });                         \
  }                                                                                                         \
  extern "C" void reft_emu_rmsnorm_bwd_add_##SUF(unsigned g, unsigned b, const T* x, const T* w,            \
                                                 const T* gr, const T* res, T* dx, size_t rows, int d,      \
                                                 float eps) {                                               \
    emu::launch(g, b, [&] { reft_rmsnorm_bwd_add_##SUF(x, w, gr, res, dx, rows, d, eps); });                \
  }                                                                                                         \
  extern "C" void reft_emu_rope_##SUF(unsigned g, unsigned b, const T* x, const T* c, const T* s, T* y,     \
                                      size_t n, int heads, int t, int hd, int inverse, int layout) {        \
    emu::launch(g, b, [&] { reft_rope_##SUF(x, c, s, y, n, heads, t, hd, inverse, layout); });              \
  }                                                                                                         \
  extern "C" void reft_emu_swiglu_fwd_##SUF(unsigned g, unsigned b, const T* a, const T* u, T* y,           \
                                            size_t n, size_t f) {                                           \
    emu::launch(g, b, [&] { reft_swiglu_fwd_##SUF(a, u, y, n, f); });                                       \
  }                                                                                                         \
  extern "C" void reft_emu_swiglu_bwd_##SUF(unsigned g, unsigned b, const T* a, const T* u, const T* gr,    \
                                            T* d, size_t n, size_t f) {                                     \
    emu::launch(g, b, [&] { reft_swiglu_bwd_##SUF(a, u, gr, d, n, f); });                                   \
  }                                                                                                         \
  extern "C" void reft_emu_decode_attn_##SUF(unsigned g, unsigned b, const T* q, const T* k, const T* v,    \
                                             const float* m, T* o, size_t rows, int gq, int nkv, int tk,    \
                                             int kcap, int hd, float scale) {                               \
    emu::launch(g, b, [&] { reft_decode_attn_##SUF(q, k, v, m, o, rows, gq, nkv, tk, kcap, hd, scale); });  \
  }                                                                                                         \
  extern "C" void reft_emu_add_rmsnorm_fwd_##SUF(unsigned g, unsigned b, const T* x, const T* r,            \
                                                 const T* w, T* s, T* y, size_t rows, int d, float eps) {   \
    emu::launch(g, b, [&] { reft_add_rmsnorm_fwd_##SUF(x, r, w, s, y, rows, d, eps); });                    \
  }                                                                                                         \
  extern "C" void reft_emu_qkv_rows_##SUF(unsigned g, unsigned b, T* rows, T* q, T* k, T* v, const T* c,    \
                                          const T* s, size_t n, int t, int nh, int nkv, int hd, int inv,    \
                                          int kcap, int koff) {                                             \
    emu::launch(g, b, [&] { reft_qkv_rows_##SUF(rows, q, k, v, c, s, n, t, nh, nkv, hd, inv, kcap, koff); }); \
  }                                                                                                         \
  extern "C" void reft_emu_rows_add_##SUF(unsigned g, unsigned b, const T* h, const T* dl, const unsigned* r, \
                                          T* out, size_t n, int d, size_t nh) {                             \
    emu::launch(g, b, [&] { reft_rows_add_##SUF(h, dl, r, out, n, d, nh); });                               \
  }

#define EMU_DECODE_ENTRIES(T, SUF)                                                                        \
  extern "C" void reft_emu_embed_rows_##SUF(unsigned g, unsigned b, const T* table, const unsigned* ids, T* out, \
                                            size_t n, int d) {                                              \
    emu::launch(g, b, [&] { reft_embed_rows_##SUF(table, ids, out, n, d); });                               \
  }                                                                                                         \
  extern "C" void reft_emu_qkv_rows_at_##SUF(unsigned g, unsigned b, T* rows, T* q, T* k, T* v, const T* c,   \
                                             const T* s, size_t n, int nh, int nkv, int hd, int kcap,       \
                                             const int* info) {                                             \
    emu::launch(g, b, [&] { reft_qkv_rows_at_##SUF(rows, q, k, v, c, s, n, nh, nkv, hd, kcap, info); });     \
  }                                                                                                         \
  extern "C" void reft_emu_decode_attn_at_##SUF(unsigned g, unsigned b, const T* q, const T* k, const T* v, \
                                                const float* m, T* o, size_t rows, int gq, int nkv,         \
                                                int kcap, int hd, float scale, const int* info) {           \
    emu::launch(g, b, [&] { reft_decode_attn_at_##SUF(q, k, v, m, o, rows, gq, nkv, kcap, hd, scale, info); }); \
  }                                                                                                         \
  extern "C" void reft_emu_argmax_rows_##SUF(unsigned g, unsigned b, const T* x, unsigned* out, size_t rows, \
                                             int n) {                                                       \
    emu::launch(g, b, [&] { reft_argmax_rows_##SUF(x, out, rows, n); });                                    \
  }

EMU_DECODE_ENTRIES(float, f32)
EMU_DECODE_ENTRIES(__nv_bfloat16, bf16)
EMU_DECODE_ENTRIES(__half, f16)

EMU_ENTRIES(float, f32)
EMU_ENTRIES(__nv_bfloat16, bf16)
EMU_ENTRIES(__half, f16)

extern "C" void reft_emu_adamw_f32(unsigned g, unsigned b, float* p, const float* gr, float* m, float* v, size_t n,
                                   const float* h) {
  emu::launch(g, b, [&] { reft_adamw_f32(p, gr, m, v, n, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]); });
}

extern "C" void reft_emu_sum_squares_f32(const float* x, size_t n, float* out, size_t slot) {
  emu::launch(1, 32, [&] { reft_sum_squares_f32(x, n, out, slot); });
}

extern "C" void reft_emu_dropout_mask_f32(unsigned g, unsigned b, float* out, size_t n, unsigned long long key,
                                          unsigned threshold, float scale) {
  emu::launch(g, b, [&] { reft_dropout_mask_f32(out, n, key, threshold, scale); });
}
