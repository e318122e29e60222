//! Fused CUDA kernels for reft-core's hot elementwise and row ops, with their backward
//! (`kernels/fused.cu`): the attention softmax with scale and additive mask, RMSNorm, RoPE and
//! SwiGLU, and the AdamW update of the intervention parameters. With the `ptx` feature the
//! crate embeds the PTX that reft-core's CUDA build loads; with `emu` it links the same source
//! compiled for the host (`kernels/emu.h`), which the CPU tests run against reft-core's own CPU
//! ops.
//!
//! The launch geometry lives here, in Rust, so that the GPU and the emulation launch the kernels
//! the same way.

/// Warps per block for the row kernels (one warp per row).
pub const ROW_WARPS: u32 = 4;
/// Threads per block for the elementwise kernels.
pub const ELEMENTWISE_BLOCK: u32 = 256;
/// Blocks at most for the elementwise kernels; beyond it their grid-stride loops take over.
pub const ELEMENTWISE_MAX_GRID: usize = 1 << 16;

/// `(grid, block)` for a row kernel over `rows` rows.
pub fn row_launch(rows: usize) -> (u32, u32) {
    let grid = rows.div_ceil(ROW_WARPS as usize).max(1);
    (u32::try_from(grid).unwrap_or(u32::MAX), ROW_WARPS * 32)
}

/// `(grid, block)` for an elementwise kernel over `n` elements.
pub fn elementwise_launch(n: usize) -> (u32, u32) {
    let grid = n.div_ceil(ELEMENTWISE_BLOCK as usize).clamp(1, ELEMENTWISE_MAX_GRID);
    (grid as u32, ELEMENTWISE_BLOCK)
}

/// The PTX of `kernels/fused.cu`; one entry point per kernel and dtype, named
/// `reft_<kernel>_<f32|bf16|f16>`.
#[cfg(feature = "ptx")]
pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/fused.ptx"));

#[cfg(feature = "emu")]
pub mod emu;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_geometry_covers_every_row_and_element() {
        for rows in [1, 3, 4, 5, 1000] {
            let (g, b) = row_launch(rows);
            assert!(g as usize * (b as usize / 32) >= rows && b % 32 == 0);
        }
        let (g, b) = elementwise_launch(10_000_000_000);
        assert_eq!((g as usize, b), (ELEMENTWISE_MAX_GRID, ELEMENTWISE_BLOCK));
        assert_eq!(elementwise_launch(0).0, 1);
    }
}
