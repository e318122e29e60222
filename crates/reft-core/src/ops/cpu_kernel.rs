//! Plumbing shared by the fused CPU ops: one kernel, generic over f32 and f64, run on the
//! contiguous data of candle storages (a custom op's forward) or of CPU tensors (its backward).
//!
//! Each fused op replaces a chain of candle primitives, each of which allocates and walks its
//! tensor once more in the forward and several times in the backward (where candle also builds
//! gradients for constant operands). The kernels accumulate in f64 whatever the storage type.

use candle_core::{CpuStorage, Layout, Result, Shape, Storage, Tensor};

/// The element types the fused kernels run on.
pub(crate) trait Float: Copy + Send + Sync + 'static {
    fn to(self) -> f64;
    fn from(x: f64) -> Self;
    /// `eˣ` at this type's precision (`expf` for f32, about twice as fast as f64 `exp`).
    fn exp_at(x: f64) -> f64;
    /// The data as f32, for the vectorised loops of `vec_math` (f64 data has none: it serves
    /// the finite-difference checks at full precision).
    fn as_f32(x: &[Self]) -> Option<&[f32]>;
    fn as_f32_mut(x: &mut [Self]) -> Option<&mut [f32]>;
}

impl Float for f32 {
    fn to(self) -> f64 {
        self as f64
    }
    fn from(x: f64) -> Self {
        x as f32
    }
    fn exp_at(x: f64) -> f64 {
        (x as f32).exp() as f64
    }
    fn as_f32(x: &[Self]) -> Option<&[f32]> {
        Some(x)
    }
    fn as_f32_mut(x: &mut [Self]) -> Option<&mut [f32]> {
        Some(x)
    }
}

impl Float for f64 {
    fn to(self) -> f64 {
        self
    }
    fn from(x: f64) -> Self {
        x
    }
    fn exp_at(x: f64) -> f64 {
        x.exp()
    }
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

/// A computation over contiguous inputs of one dtype, with one or more outputs.
pub(crate) trait Kernel: Sync {
    /// For error messages.
    const NAME: &'static str;
    fn run<T: Float>(&self, inputs: &[&[T]]) -> Vec<Vec<T>>;
}

enum Outputs {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
}

fn dispatch<K: Kernel>(k: &K, inputs: &[(&CpuStorage, &Layout)]) -> Result<Outputs> {
    let (mut f32s, mut f64s) = (Vec::new(), Vec::new());
    for (s, l) in inputs {
        let Some((a, b)) = l.contiguous_offsets() else {
            candle_core::bail!("{}: contiguous inputs expected", K::NAME)
        };
        match s {
            CpuStorage::F32(v) => f32s.push(&v[a..b]),
            CpuStorage::F64(v) => f64s.push(&v[a..b]),
            _ => candle_core::bail!("{}: f32 or f64 inputs expected", K::NAME),
        }
    }
    if f32s.len() == inputs.len() {
        Ok(Outputs::F32(k.run(&f32s)))
    } else if f64s.len() == inputs.len() {
        Ok(Outputs::F64(k.run(&f64s)))
    } else {
        candle_core::bail!("{}: inputs of one dtype expected", K::NAME)
    }
}

/// The kernel's first output as a storage: the body of a custom op's `cpu_fwd`.
pub(crate) fn on_storage<K: Kernel>(k: &K, inputs: &[(&CpuStorage, &Layout)]) -> Result<CpuStorage> {
    fn first<T>(mut v: Vec<T>) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v.swap_remove(0))
        }
    }
    let out = match dispatch(k, inputs)? {
        Outputs::F32(v) => first(v).map(CpuStorage::F32),
        Outputs::F64(v) => first(v).map(CpuStorage::F64),
    };
    out.ok_or_else(|| candle_core::Error::Msg(format!("{}: kernel returned nothing", K::NAME)))
}

/// The kernel on CPU tensors, each output as a tensor of `shape`: the body of a backward.
pub(crate) fn on_tensors<K: Kernel>(k: &K, inputs: &[&Tensor], shape: &Shape) -> Result<Vec<Tensor>> {
    let device = match inputs.first() {
        Some(t) => t.device().clone(),
        None => candle_core::bail!("{}: no inputs", K::NAME),
    };
    let contiguous = inputs.iter().map(|t| t.contiguous()).collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = contiguous.iter().map(|t| t.storage_and_layout()).collect();
    let mut pairs = Vec::with_capacity(guards.len());
    for (s, l) in &guards {
        match &**s {
            Storage::Cpu(c) => pairs.push((c, *l)),
            _ => candle_core::bail!("{}: CPU tensors expected", K::NAME),
        }
    }
    match dispatch(k, &pairs)? {
        Outputs::F32(v) => v.into_iter().map(|o| Tensor::from_vec(o, shape, &device)).collect(),
        Outputs::F64(v) => v.into_iter().map(|o| Tensor::from_vec(o, shape, &device)).collect(),
    }
}

/// Work below this many elements runs inline (candle's own element-wise threshold).
const PAR_MIN: usize = 64 * 1024;
/// Elements per unit of work handed to a pool thread (candle's chunk size).
const PAR_CHUNK: usize = 16 * 1024;

/// Calls `f` on disjoint ranges covering `0..n_rows`, rows being `row_len` elements long.
///
/// Large work runs on candle's CPU pool, the threads its own element-wise ops use, rather than
/// rayon's (which the GEMMs use): waking the other pool for every small kernel left its threads
/// spinning against the next op on two cores. Small work (one decoding step) runs inline.
pub(crate) fn for_rows(n_rows: usize, row_len: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    if n_rows * row_len < PAR_MIN {
        return f(0..n_rows);
    }
    let per_unit = (PAR_CHUNK / row_len.max(1)).max(1);
    candle_core::utils::barrier_pool().execute_chunked(n_rows.div_ceil(per_unit), |units| {
        f(units.start * per_unit..(units.end * per_unit).min(n_rows))
    });
}

/// An output buffer that `for_rows` workers write in disjoint parts.
pub(crate) struct Out<T>(*mut T, usize);

// SAFETY: workers only write the disjoint ranges `for_rows` hands them (see `Out::part`).
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    pub(crate) fn new(buf: &mut [T]) -> Self {
        Self(buf.as_mut_ptr(), buf.len())
    }

    /// Elements `start..end`.
    ///
    /// # Safety
    /// No two live parts may overlap; `for_rows` ranges scaled by the row length never do.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, start: usize, end: usize) -> &mut [T] {
        assert!(start <= end && end <= self.1, "output part out of bounds");
        std::slice::from_raw_parts_mut(self.0.add(start), end - start)
    }
}
