// The subset of CUDA that fused.cu uses, on the host, so that the CPU tests run the kernels'
// own code: every CUDA thread of a block is a host thread, blocks run one after another, and a
// warp shuffle is a real exchange between the 32 lanes of a warp (two barriers around a shared
// slot array). Slow by design; tests use small shapes. Not for production use.
#pragma once
#include <barrier>
#include <cmath>
#include <math.h>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#define REFT_CUDA_EMU 1
#define __global__
#define __device__
#define __forceinline__ inline

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

namespace emu {
struct Warp {
  std::barrier<> bar{32};
  float slot[32];
};
inline thread_local dim3 thread_idx, block_idx;
inline dim3 block_dim, grid_dim;
inline thread_local Warp* warp = nullptr;
/// One launch at a time: the grid and block sizes are process-wide, as the launch's threads
/// all read them (tests call kernels from several threads at once).
inline std::mutex launch_lock;

/// Runs `kernel` on `grid` blocks of `block` threads (a multiple of 32).
template <typename F>
void launch(unsigned grid, unsigned block, F kernel) {
  if (block == 0 || block % 32 != 0) throw std::invalid_argument("emu: block size must be a multiple of 32");
  std::lock_guard<std::mutex> guard(launch_lock);
  grid_dim = {grid, 1, 1};
  block_dim = {block, 1, 1};
  for (unsigned b = 0; b < grid; ++b) {
    std::vector<std::unique_ptr<Warp>> warps;
    for (unsigned w = 0; w < block / 32; ++w) warps.push_back(std::make_unique<Warp>());
    std::vector<std::thread> threads;
    threads.reserve(block);
    for (unsigned t = 0; t < block; ++t) {
      threads.emplace_back([&, b, t] {
        block_idx = {b, 1, 1};
        thread_idx = {t, 1, 1};
        warp = warps[t / 32].get();
        kernel();
      });
    }
    for (auto& th : threads) th.join();
  }
}
}  // namespace emu

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

/// Every lane of the warp must call it, as on the GPU with a full mask.
inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  emu::Warp& w = *emu::warp;
  unsigned lane = emu::thread_idx.x % 32;
  w.slot[lane] = v;
  w.bar.arrive_and_wait();
  float other = w.slot[lane ^ (unsigned)lane_mask];
  w.bar.arrive_and_wait();
  return other;
}

#ifndef INFINITY
#define INFINITY (__builtin_inff())
#endif

/// bf16 as its bits; conversions round to nearest even like cuda_bf16.h.
struct __nv_bfloat16 {
  uint16_t bits;
};
inline float __bfloat162float(__nv_bfloat16 h) {
  uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x40)};  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return {uint16_t(u >> 16)};
}

/// IEEE half through the compiler's _Float16 (round to nearest even).
struct __half {
  _Float16 v;
};
inline float __half2float(__half h) { return float(h.v); }
inline __half __float2half(float f) { return {_Float16(f)}; }
