//! The additive attention mask of a decoder forward: 0 where a query may see a key, [`MASKED`]
//! where it may not (a later key, a key beyond the sliding window, a padded key).
//!
//! The host's part comes before a step's first kernel, so the GPU waits while it runs: on the 7B
//! anchor batch (8 × 512 queries over 512 keys) the element-by-element loop took about 9 ms on
//! this project's CPU, and filling every sequence's rows, with the pages of a fresh 8 MiB
//! buffer, still 5–11 ms. [`additive_mask`] fills only the causal rows, which every sequence
//! shares, and lets the device take their minimum with each sequence's key row; where the rows
//! themselves are wanted ([`additive_rows`]: the static decoding step), each query row starts
//! masked and only its visible span is opened.

use candle_core::{Device, Result, Tensor};

/// Large negative used for masked scores; finite so fully-masked (padding) rows stay NaN-free.
pub(crate) const MASKED: f32 = -1e30;

/// `[b, t, past + t]`: row `(r, i)` masks what query `past + i` of sequence `r` may not see,
/// given `key_mask` `[b, past + t]` (1 for real tokens) and an optional sliding `window` (a query
/// sees keys less than `window` positions before it, itself included).
pub(crate) fn additive_rows(key_mask: &[u8], b: usize, t: usize, past: usize, window: Option<usize>) -> Vec<f32> {
    let total = past + t;
    let mut m = vec![MASKED; b * t * total];
    for r in 0..b {
        let keys = &key_mask[r * total..(r + 1) * total];
        let unpadded = keys.iter().all(|&k| k != 0);
        for i in 0..t {
            let q = past + i;
            // Visible: j ≤ q (causal) and q < j + window, i.e. j ≥ q + 1 − window.
            let lo = window.map(|w| (q + 1).saturating_sub(w)).unwrap_or(0);
            if lo > q {
                continue;
            }
            let row = &mut m[(r * t + i) * total..(r * t + i + 1) * total];
            if unpadded {
                row[lo..=q].fill(0.0);
            } else {
                for (v, &k) in row[lo..=q].iter_mut().zip(&keys[lo..=q]) {
                    if k != 0 {
                        *v = 0.0;
                    }
                }
            }
        }
    }
    m
}

/// The mask `[b, 1, g·t, past + t]` of a forward: [`additive_rows`] with each sequence's rows
/// repeated for the `g` query heads that share a key head (the grouped attention's layout),
/// built on `device` as the elementwise minimum of the causal rows `[t, past + t]` and the
/// sequence's key row (each 0 or [`MASKED`]: the minimum is 0 exactly where both are). The host
/// fills `t·(past + t)` floats and `b·(past + t)` key flags instead of `b·t·(past + t)`, and the
/// grouped heads' repeat is the same kernel.
pub(crate) fn additive_mask(key_mask: &[u8], b: usize, t: usize, past: usize, window: Option<usize>, g: usize, device: &Device) -> Result<Tensor> {
    let total = past + t;
    if key_mask.len() != b * total {
        candle_core::bail!("key mask has {} entries, expected {}", key_mask.len(), b * total);
    }
    let causal = Tensor::from_vec(additive_rows(&vec![1u8; total], 1, t, past, window), (1, 1, 1, t, total), device)?;
    let keys: Vec<f32> = key_mask.iter().map(|&k| if k != 0 { 0.0 } else { MASKED }).collect();
    let keys = Tensor::from_vec(keys, (b, 1, 1, 1, total), device)?;
    let shape = (b, 1, g, t, total);
    causal.broadcast_as(shape)?.minimum(&keys.broadcast_as(shape)?)?.reshape((b, 1, g * t, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` key flags from an LCG, all 1 unless `padded` (then about one in four is 0).
    fn random_key_mask(seed: &mut u64, n: usize, padded: bool) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                u8::from(!padded || (*seed >> 33) % 4 != 0)
            })
            .collect()
    }

    /// The device mask equals the host rows, repeated per grouped head, to the bit.
    #[test]
    fn the_device_mask_is_the_rows_repeated_per_group() {
        let mut seed = 5u64;
        for (b, t, past) in [(3, 7, 0), (2, 1, 9), (4, 5, 3), (1, 12, 0)] {
            let total = past + t;
            for window in [None, Some(1), Some(3)] {
                for padded in [false, true] {
                    let key_mask = random_key_mask(&mut seed, b * total, padded);
                    let rows = additive_rows(&key_mask, b, t, past, window);
                    for g in [1, 3] {
                        let m = additive_mask(&key_mask, b, t, past, window, g, &Device::Cpu).unwrap();
                        assert_eq!(m.dims(), &[b, 1, g * t, total]);
                        let got: Vec<f32> = m.flatten_all().unwrap().to_vec1().unwrap();
                        let want: Vec<f32> = (0..b).flat_map(|r| (0..g).flat_map(move |_| (0..t * total).map(move |k| (r, k)))).map(|(r, k)| rows[r * t * total + k]).collect();
                        assert!(got == want, "b {b} t {t} past {past} window {window:?} padded {padded} g {g}");
                    }
                }
            }
        }
        assert!(additive_mask(&[1, 1], 1, 3, 0, None, 1, &Device::Cpu).is_err(), "a short key mask is refused");
    }

    /// The definition, element by element.
    fn naive(key_mask: &[u8], b: usize, t: usize, past: usize, window: Option<usize>) -> Vec<f32> {
        let total = past + t;
        let mut m = vec![0f32; b * t * total];
        for r in 0..b {
            for i in 0..t {
                let q = past + i;
                for j in 0..total {
                    let causal = j <= q;
                    let inside = window.map(|w| q < j + w).unwrap_or(true);
                    if !(causal && inside && key_mask[r * total + j] != 0) {
                        m[(r * t + i) * total + j] = MASKED;
                    }
                }
            }
        }
        m
    }

    #[test]
    fn equals_the_element_by_element_definition() {
        let mut seed = 9u64;
        for (b, t, past) in [(3, 7, 0), (2, 1, 9), (4, 5, 3), (1, 12, 0)] {
            let total = past + t;
            for window in [None, Some(0), Some(1), Some(3), Some(100)] {
                for padded in [false, true] {
                    let key_mask = random_key_mask(&mut seed, b * total, padded);
                    let got = additive_rows(&key_mask, b, t, past, window);
                    assert_eq!(got, naive(&key_mask, b, t, past, window), "b {b} t {t} past {past} window {window:?} padded {padded}");
                }
            }
        }
    }
}
