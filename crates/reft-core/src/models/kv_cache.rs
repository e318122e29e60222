//! The key/value cache of incremental decoding, per layer `[b, kv_heads, t_past, head_dim]`:
//! grown by concatenation (training's frozen window, or any cache seeded from outside), or
//! written in place into buffers reserved for a generation's whole length
//! ([`KvCache::with_capacity`]).

use candle_core::{DType, Device, Tensor};

/// Per-layer key/value cache for incremental decoding: `[b, kv_heads, t_past, head_dim]`.
///
/// Made [`KvCache::with_capacity`], each layer's keys and values go into buffers of that many
/// positions, written in place, and `layers` holds views of their filled part: a decoding step
/// then copies only its own keys and values, where growing the cache by concatenation copies
/// the whole cache of every layer every step (two copies and an allocation per tensor).
#[derive(Default)]
pub struct KvCache {
    pub layers: Vec<Option<(Tensor, Tensor)>>,
    /// Positions to reserve per layer (0: grow by concatenation).
    pub capacity: usize,
    buffers: Vec<Option<(Tensor, Tensor)>>,
}

/// One layer's entry of a [`KvCache`], as the attention updates it.
pub(crate) struct CacheSlot<'a> {
    kv: &'a mut Option<(Tensor, Tensor)>,
    buffer: &'a mut Option<(Tensor, Tensor)>,
    capacity: usize,
}

impl CacheSlot<'_> {
    /// The reserved buffers `[b, h, capacity, hd]` and the positions filled, when `t` more fit
    /// (made on the first write); `None` where `append` would concatenate.
    pub(super) fn room(&mut self, (b, h, t, hd): (usize, usize, usize, usize), dtype: DType, device: &Device) -> candle_core::Result<Option<(Tensor, Tensor, usize)>> {
        let past = match self.kv.as_ref() {
            Some((pk, _)) => pk.dim(2)?,
            None => 0,
        };
        if past + t > self.capacity || (past > 0 && self.buffer.is_none()) {
            return Ok(None);
        }
        if past == 0 {
            let zeros = || Tensor::zeros((b, h, self.capacity, hd), dtype, device);
            *self.buffer = Some((zeros()?, zeros()?));
        }
        Ok(self.buffer.as_ref().map(|(k, v)| (k.clone(), v.clone(), past)))
    }

    /// Marks the first `len` positions of the reserved buffers filled (written by the caller)
    /// and returns their keys and values.
    pub(super) fn filled(self, len: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let Some((kb, vb)) = self.buffer.as_ref() else {
            candle_core::bail!("KV cache: no reserved buffers to fill");
        };
        let (k, v) = (kb.narrow(2, 0, len)?, vb.narrow(2, 0, len)?);
        *self.kv = Some((k.clone(), v.clone()));
        Ok((k, v))
    }

    /// Appends keys and values `[b, kv_heads, t, head_dim]` and returns those of all positions
    /// with the number cached before. What the cache keeps has no graph (decoding is inference
    /// only, and training's cached positions are constants).
    pub(super) fn append(mut self, k: Tensor, v: Tensor) -> candle_core::Result<(Tensor, Tensor, usize)> {
        // In place when the buffers were made by this cache's first write and still have room;
        // else (a cache seeded from outside, or one that outgrew its capacity) concatenated.
        if let Some((kb, vb, past)) = self.room(k.dims4()?, k.dtype(), k.device())? {
            kb.slice_set(&k.detach().contiguous()?, 2, past)?;
            vb.slice_set(&v.detach().contiguous()?, 2, past)?;
            let (ka, va) = self.filled(past + k.dim(2)?)?;
            if !(k.track_op() || v.track_op()) {
                return Ok((ka, va, past));
            }
            // A graph (interventions in a generation's prompt) needs this call's keys and values
            // as computed; the cached positions are constants.
            if past == 0 {
                return Ok((k, v, past));
            }
            let (pk, pv) = (kb.narrow(2, 0, past)?, vb.narrow(2, 0, past)?);
            return Ok((Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?, past));
        }
        let past = match self.kv.as_ref() {
            Some((pk, _)) => pk.dim(2)?,
            None => 0,
        };
        *self.buffer = None;
        let (k, v) = match self.kv.as_ref() {
            Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
            None => (k, v),
        };
        *self.kv = Some((k.detach(), v.detach()));
        Ok((k, v, past))
    }
}

impl KvCache {
    /// An empty cache that reserves `capacity` positions per layer on its first write.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { capacity, ..Self::default() }
    }

    /// A cache holding these keys and values per layer (grown by concatenation).
    pub fn from_layers(layers: Vec<Option<(Tensor, Tensor)>>) -> Self {
        Self { layers, ..Self::default() }
    }

    /// Layer `l`'s entry (the cache must have `l + 1` layers).
    pub(super) fn slot(&mut self, l: usize) -> CacheSlot<'_> {
        self.buffers.resize_with(self.layers.len(), || None);
        CacheSlot { kv: &mut self.layers[l], buffer: &mut self.buffers[l], capacity: self.capacity }
    }

    /// Layer `l`'s reserved buffers `[b, kv_heads, capacity, head_dim]` while they hold all of
    /// its cached positions (written in place since the first write), else `None`.
    pub fn reserved(&self, l: usize) -> Option<(&Tensor, &Tensor)> {
        let (k, _) = self.layers.get(l)?.as_ref()?;
        let (kb, vb) = self.buffers.get(l)?.as_ref()?;
        (kb.dims()[2] == self.capacity && k.dims()[2] <= self.capacity).then_some((kb, vb))
    }

    pub fn past_len(&self) -> usize {
        // The first filled layer: a cache may start above layer 0 (training's frozen window).
        self.layers.iter().flatten().next().map(|(k, _)| k.dims()[2]).unwrap_or(0)
    }
}
