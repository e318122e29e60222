//! The key/value cache with reserved capacity (`KvCache::with_capacity`: keys and values
//! written in place into per-layer buffers) against the one grown by concatenation: the same
//! hidden states over a prompt and decoding steps, to the bit, in f32 and f64, with the
//! in-place path really taken; and a cache that outgrows its capacity falls back to
//! concatenation with the same results.

use candle_core::{DType, Tensor};
use reft_core::models::{ForwardInput, KvCache, NoHooks};

/// Hidden states of a 5-token prompt (row 1 left-padded by 2), then of `steps` single tokens.
fn run(cache: &mut KvCache, dtype: DType, steps: usize) -> Vec<Vec<f64>> {
    let dec = reft_core::testing::tiny_decoder(&reft_core::testing::tiny_config(), dtype, 3).unwrap();
    let (b, t) = (2, 5);
    let mut mask: Vec<u8> = vec![1, 1, 1, 1, 1, 0, 0, 1, 1, 1];
    let ids = Tensor::from_vec((0..(b * t) as u32).map(|i| (i * 17 + 3) % 200).collect::<Vec<_>>(), (b, t), &dec.device).unwrap();
    let pos = vec![(0..t as i64).collect::<Vec<_>>(), vec![0, 0, 0, 1, 2]];
    let mut out = Vec::new();
    let h = dec.hidden_states(&ForwardInput { ids: &ids, key_mask: &mask, position_ids: &pos }, &NoHooks, Some(cache)).unwrap();
    out.push(h.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap());
    for s in 0..steps {
        let total = t + s + 1;
        let mut grown = Vec::new();
        for r in 0..b {
            grown.extend_from_slice(&mask[r * (total - 1)..(r + 1) * (total - 1)]);
            grown.push(1);
        }
        mask = grown;
        let ids = Tensor::from_vec(vec![(s * 31 + 7) as u32, (s * 13 + 5) as u32], (b, 1), &dec.device).unwrap();
        let pos = vec![vec![(t + s) as i64], vec![(t + s - 2) as i64]];
        let h = dec.hidden_states(&ForwardInput { ids: &ids, key_mask: &mask, position_ids: &pos }, &NoHooks, Some(cache)).unwrap();
        out.push(h.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap());
    }
    out
}

#[test]
fn reserved_cache_matches_the_concatenated_one() {
    for dtype in [DType::F32, DType::F64] {
        let mut grown = KvCache::default();
        let want = run(&mut grown, dtype, 4);
        let mut reserved = KvCache::with_capacity(12);
        let got = run(&mut reserved, dtype, 4);
        assert_eq!(got, want, "{dtype:?}: reserved cache");
        assert_eq!(reserved.past_len(), 9);
        // The in-place path: every layer's keys are a view of a 12-position buffer.
        for (k, v) in reserved.layers.iter().flatten() {
            assert!(!k.is_contiguous() && !v.is_contiguous(), "keys and values should be views of the buffers");
        }
        assert!(grown.layers.iter().flatten().all(|(k, _)| k.is_contiguous()));
        // Outgrowing the capacity (prompt 5 + 4 steps into 7 positions) concatenates from there.
        let mut small = KvCache::with_capacity(7);
        assert_eq!(run(&mut small, dtype, 4), want, "{dtype:?}: cache past its capacity");
        assert_eq!(small.past_len(), 9);
    }
}
