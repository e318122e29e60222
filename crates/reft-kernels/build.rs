//! Builds kernels/fused.cu: to PTX with nvcc for the GPU (feature `ptx`; `NVCC` or nvcc on the
//! PATH, `CUDA_COMPUTE_CAP` as for candle, default 80:
//! PTX that JIT-compiles on every newer GPU), and as emulated C++ for the CPU tests
//! (feature `emu`). Neither runs in a default build, so the CPU and WASM builds need no CUDA
//! and no C++ compiler.

use std::{env, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=kernels/fused.cu");
    println!("cargo:rerun-if-changed=kernels/decode.cu");
    println!("cargo:rerun-if-changed=kernels/emu.h");
    println!("cargo:rerun-if-changed=kernels/emu_host.cpp");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    if env::var_os("CARGO_FEATURE_PTX").is_some() {
        let nvcc = env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
        // PTX for compute capability 8.0 JIT-compiles on every newer GPU (the kernels use nothing
        // past sm_80); a build for one GPU sets CUDA_COMPUTE_CAP, as candle's own kernels read.
        let cap = env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
        let ptx = out.join("fused.ptx");
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", "-std=c++17", &format!("-arch=compute_{cap}"), "kernels/fused.cu", "-o"])
            .arg(&ptx)
            .status()
            .unwrap_or_else(|e| panic!("reft-kernels: cannot run {nvcc} ({e}); put CUDA's nvcc on the PATH or set NVCC"));
        assert!(status.success(), "reft-kernels: {nvcc} failed on kernels/fused.cu");
    }
    if env::var_os("CARGO_FEATURE_EMU").is_some() {
        cc::Build::new()
            .cpp(true)
            .std("c++20")
            .opt_level(2)
            .file("kernels/emu_host.cpp")
            .include("kernels")
            .compile("reft_kernels_emu");
    }
}
