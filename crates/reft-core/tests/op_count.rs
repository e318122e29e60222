//! How many f32 tensors one more intervention adds to a training step's gradient computation:
//! a device-independent count of the ops that produce them (every candle op that computes
//! allocates its output; views do not), close to the number of kernels a GPU's host launches
//! for it. Only allocations aligned to 4 bytes are counted: the storage of f32 tensors, not
//! the bookkeeping around them (`Arc`s, shapes and strides are 8-aligned).
//!
//! The marginal cost is the difference between 9 and 1 interventions (stacked LoReFTs on one
//! site, so the model's own work is the same), divided by 8. It includes what one node cannot
//! remove: the rows' gather and scatter, the stacked edits' materialising, the rotation, and
//! candle's zero-filled accumulator and add for each input's gradient. Measured when written:
//! 77 tensors op by op, 60 as one node (`interventions/low_rank.rs`). The test asserts at least
//! 15% fewer and prints the counts.
//!
//! One test function: the switch and the counter are process-wide.

use candle_core::DType;
use reft_core::interventions::{set_intervention_nodes, Activation, InterventionSpec, Kind};
use reft_core::models::Component;
use reft_core::{Batch, ReftModel};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.align() == 4 {
            // f32 (and u32) storage.
            ALLOCS.fetch_add(1, Relaxed);
        }
        System.alloc(l)
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn batch(n: usize) -> Batch {
    let (b, t) = (2, 16);
    let ids: Vec<u32> = (0..b * t).map(|i| ((i * 37 + 11) % 250) as u32).collect();
    let labels = ids.iter().enumerate().map(|(i, &v)| if i % t < t / 2 { -100 } else { v as i64 }).collect();
    let positions = (0..n * b).flat_map(|_| [0i64, 1, 2, 13, 14, 15]).collect();
    Batch { input_ids: ids, batch_size: b, seq_len: t, positions: Some(positions), num_positions: 6, labels: Some(labels), ..Default::default() }
}

/// f32 allocations of one gradient computation (after one warm-up) with `n` LoReFTs on layer 1.
fn allocations(n: usize) -> usize {
    let base = Arc::new(reft_core::testing::tiny_model(DType::F32, 7).unwrap());
    let spec = InterventionSpec { kind: Kind::Loreft, layer: 1, component: Component::BlockOutput, rank: 4, dropout: 0.0, activation: Activation::Linear, add_bias: false };
    let m = ReftModel::new(base, &vec![spec; n], 3).unwrap();
    let b = batch(n);
    m.gradients(std::slice::from_ref(&b)).unwrap();
    let before = ALLOCS.load(Relaxed);
    m.gradients(std::slice::from_ref(&b)).unwrap();
    ALLOCS.load(Relaxed) - before
}

#[test]
fn one_node_edits_make_fewer_tensors_than_the_op_by_op_graph() {
    let mut per = [0f64; 2];
    for (k, nodes) in [false, true].into_iter().enumerate() {
        set_intervention_nodes(nodes);
        let (one, nine) = (allocations(1), allocations(9));
        per[k] = (nine as f64 - one as f64) / 8.0;
        println!("nodes {nodes}: {one} f32 tensors with 1 intervention, {nine} with 9: {:.1} per intervention", per[k]);
    }
    set_intervention_nodes(true);
    assert!(per[1] > 0.0 && per[1] <= 0.85 * per[0], "{:.1} f32 tensors per intervention as one node, {:.1} op by op", per[1], per[0]);
}
