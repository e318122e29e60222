//! Shared helpers for integration tests: tiny models, batches, finite differences.
#![allow(dead_code)]

use candle_core::DType;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::{Component, Model};
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

pub const ALL_KINDS: [Kind; 6] = [Kind::Loreft, Kind::Direft, Kind::DireftOrth, Kind::Noreft, Kind::Consreft, Kind::Lobireft];

pub fn model(dtype: DType) -> Arc<Model> {
    Arc::new(reft_core::testing::tiny_model(dtype, 7).unwrap())
}

pub fn spec(kind: Kind, layer: usize, component: Component) -> InterventionSpec {
    InterventionSpec { kind, layer, component, rank: 3, dropout: 0.0, activation: Activation::Linear, add_bias: false }
}

/// A right-padded batch of 3 rows × 9 tokens with labels on the tail and 2 positions per row.
pub fn batch(num_interventions: usize) -> Batch {
    let (b, t) = (3, 9);
    let ids: Vec<u32> = (0..b * t).map(|i| ((i * 37 + 11) % 250) as u32).collect();
    let mut mask = vec![1u8; b * t];
    for p in 7..9 {
        mask[t + p] = 0; // row 1 has 2 padding tokens
    }
    mask[2 * t + 8] = 0; // row 2 has 1
    let mut labels: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    for r in 0..b {
        for p in 0..t {
            if p < 4 || mask[r * t + p] == 0 {
                labels[r * t + p] = -100;
            }
        }
    }
    let per_row = [[1i64, 3], [0, 2], [2, 5]];
    let mut positions = Vec::new();
    for i in 0..num_interventions {
        for row in per_row {
            positions.extend(row.iter().map(|p| (p + i as i64) % 6));
        }
    }
    Batch {
        input_ids: ids,
        batch_size: b,
        seq_len: t,
        attention_mask: Some(mask),
        positions: if num_interventions > 0 { Some(positions) } else { None },
        num_positions: 2,
        labels: Some(labels),
        ..Default::default()
    }
}

pub fn reft(kinds: &[(Kind, usize, Component)], dtype: DType, seed: u64) -> ReftModel {
    let specs: Vec<_> = kinds.iter().map(|&(k, l, c)| spec(k, l, c)).collect();
    ReftModel::new(model(dtype), &specs, seed).unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// pyreft's emoji quickstart: four chat questions answered in emojis.
pub const EMOJI_DATA: [(&str, &str); 4] = [("Who are you?", "🤖💬🌐🧠"), ("Why is the sky blue?", "🌍🛡️☀️➡️🔵🌌"), ("What's 2+2?", "🔢➕🔢➡️🍀"), ("Who am I?", "👤❓🔍🌟")];

/// [`EMOJI_DATA`] as (chat prompt + answer + end-of-turn ids, prompt length) for SmolLM2.
pub fn emoji_rows(tok: &reft_core::tokenizer::Tok) -> Vec<(Vec<u32>, usize)> {
    use reft_core::default_model::smollm2_chat_prompt;
    EMOJI_DATA
        .iter()
        .map(|(q, a)| {
            let p = tok.encode(&smollm2_chat_prompt(q), false).unwrap().len();
            (tok.encode(&format!("{}{a}<|im_end|>", smollm2_chat_prompt(q)), false).unwrap(), p)
        })
        .collect()
}
