//! Backward tracing (`ops::set_trace`): off, a backward records nothing; on, it records the
//! crate's own backward ops by label, with call counts that follow the model's structure.
//! Its own test binary, because tracing is process-wide state.

use candle_core::DType;
use reft_core::interventions::{Activation, InterventionSpec, Kind};
use reft_core::models::Component;
use reft_core::ops::{set_trace, take_trace};
use reft_core::{Batch, ReftModel};
use std::sync::Arc;

#[test]
fn tracing_records_the_crates_backward_ops_only_when_on() {
    let base = Arc::new(reft_core::testing::tiny_model(DType::F32, 0).unwrap());
    let layers = base.num_layers();
    let spec = InterventionSpec { kind: Kind::Loreft, layer: 0, component: Component::BlockOutput, rank: 2, dropout: 0.0, activation: Activation::Linear, add_bias: false };
    let m = ReftModel::new(base, &[spec], 0).unwrap();
    let (b, t) = (2, 8);
    let ids: Vec<u32> = (0..b * t).map(|i| (i * 7 % 50 + 3) as u32).collect();
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < t / 2 { -100 } else { v as i64 }).collect();
    let batch = Batch { input_ids: ids, batch_size: b, seq_len: t, positions: Some(vec![0, 0]), num_positions: 1, labels: Some(labels), ..Default::default() };

    set_trace(false);
    m.loss_graph(&batch).unwrap().backward().unwrap();
    assert!(take_trace().is_empty(), "tracing off must record nothing");

    // The intervention sits on layer 0's output, so the backward runs through layers 1.. only:
    // with the block nodes (CUDA's default) one attention and one MLP node each, and the head's
    // cross-entropy once; op by op, seven frozen projections each.
    let traced = || {
        set_trace(true);
        m.loss_graph(&batch).unwrap().backward().unwrap();
        set_trace(false);
        take_trace()
    };
    let calls = |trace: &[(&'static str, f64, usize)], label: &str| trace.iter().find(|(l, _, _)| *l == label).map(|(_, _, n)| *n);
    reft_core::ops::set_block_ops(true);
    let trace = traced();
    assert_eq!(calls(&trace, "attention-block"), Some(layers - 1), "{trace:?}");
    assert_eq!(calls(&trace, "mlp-block"), Some(layers - 1), "{trace:?}");
    assert_eq!(calls(&trace, "lm-cross-entropy"), Some(1), "{trace:?}");
    assert_eq!(calls(&trace, "frozen-linear"), None, "{trace:?}");
    assert!(trace.iter().all(|(_, s, _)| *s >= 0.0));
    assert!(take_trace().is_empty(), "take_trace clears");
    reft_core::ops::set_block_ops(false);
    let trace = traced();
    assert_eq!(calls(&trace, "frozen-linear"), Some(7 * (layers - 1)), "{trace:?}");
    assert_eq!(calls(&trace, "attention-block"), None, "{trace:?}");
}
