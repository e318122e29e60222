//! Training-time cache of the frozen prefix: the hidden state entering the lowest intervened
//! layer, per example. Layers below it have no trainable input, so for a given example (its
//! token ids up to its last real token, with 0..t position ids as in training) that state is the
//! same every epoch; caching it skips those layers after the first epoch.
//!
//! Only used on the gradient path, where the value at trailing padding never matters (padding is
//! masked as a key and carries no label); the cached rows are zero there. Bounded by a byte
//! budget; beyond it, rows are computed as usual.
//!
//! It also holds, per example, the keys and values of the frozen causal window's positions (see
//! `frozen_window.rs`) at every layer from `layer` up, and those positions' states leaving the
//! last layer (their loss, where they carry labels): like the states above, they depend only on
//! the example's tokens.

use std::collections::HashMap;

use candle_core::Tensor;

/// Key of one example: its tokens and mask up to its last real token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    ids: Vec<u32>,
    mask: Vec<u8>,
}

impl RowKey {
    /// The key of row `r` of a `[b, t]` batch, trimmed after its last real token.
    pub fn of(ids: &[u32], mask: &[u8], r: usize, t: usize) -> Self {
        let (ids, mask) = (&ids[r * t..(r + 1) * t], &mask[r * t..(r + 1) * t]);
        let len = mask.iter().rposition(|&m| m != 0).map(|p| p + 1).unwrap_or(0);
        Self { ids: ids[..len].to_vec(), mask: mask[..len].to_vec() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Cached `[len, d]` states at the input of `layer`, per example.
pub struct PrefixCache {
    pub layer: usize,
    pub budget_bytes: usize,
    used: usize,
    rows: HashMap<RowKey, Tensor>,
    /// Per example: the frozen window's positions.
    kv: HashMap<RowKey, FrozenRows>,
}

/// One example's frozen positions `0..len` (see `frozen_window.rs`).
pub struct FrozenRows {
    /// `(k, v)` of each layer from the cache's `layer` up, `[kv_heads, len, head_dim]`.
    pub layers: Vec<(Tensor, Tensor)>,
    /// `[len, hidden]`: the states leaving the last layer (before the final norm).
    pub top: Tensor,
}

impl FrozenRows {
    fn len(&self) -> usize {
        self.top.dims().first().copied().unwrap_or(0)
    }

    fn bytes(&self) -> usize {
        let n = self.layers.iter().map(|(k, v)| k.elem_count() + v.elem_count()).sum::<usize>() + self.top.elem_count();
        n * self.top.dtype().size_in_bytes()
    }
}

impl PrefixCache {
    pub fn new(layer: usize, budget_bytes: usize) -> Self {
        Self { layer, budget_bytes, used: 0, rows: HashMap::new(), kv: HashMap::new() }
    }

    /// An example's cached frozen positions, if at least its first `len` are cached.
    pub fn get_kv(&self, k: &RowKey, len: usize) -> Option<&FrozenRows> {
        self.kv.get(k).filter(|rows| rows.len() >= len)
    }

    /// Stores an example's frozen positions if the budget allows (a longer entry replaces a
    /// shorter one).
    pub fn put_kv(&mut self, k: RowKey, rows: FrozenRows) {
        let old = self.kv.get(&k).map(FrozenRows::bytes).unwrap_or(0);
        let new = rows.bytes();
        if new > old && self.used - old + new <= self.budget_bytes {
            self.used = self.used - old + new;
            self.kv.insert(k, rows);
        }
    }

    /// Examples whose frozen-window keys and values are cached.
    pub fn kv_len(&self) -> usize {
        self.kv.len()
    }

    pub fn get(&self, k: &RowKey) -> Option<&Tensor> {
        self.rows.get(k)
    }

    /// Stores a row if the budget allows.
    pub fn put(&mut self, k: RowKey, h: Tensor) {
        let bytes = h.elem_count() * h.dtype().size_in_bytes();
        if self.used + bytes <= self.budget_bytes && !self.rows.contains_key(&k) {
            self.used += bytes;
            self.rows.insert(k, h);
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
