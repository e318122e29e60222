//! Exact GELU, `x · Φ(x) = ½x(1 + erf(x/√2))`, as BERT's `hidden_act = "gelu"`.
//!
//! Built from `erf`, whose backward is exact. Candle's fused `gelu_erf` has a backward, but it
//! hard-codes 1/√(2π) to six digits, which the f64 finite-difference checks would notice.

use candle_core::{Result, Tensor};

/// GELU with the exact error function.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    let cdf = ((xs / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5;
    xs * cdf?
}
