//! Opt-in device time of the backward's own pieces, for finding where a slow GPU step goes.
//!
//! On a GPU every op only queues kernels, so host timers say nothing about which op is slow. With
//! tracing on (`set_trace(true)` or `REFT_TRACE=1`), each backward that this crate owns
//! synchronises the device before and after itself and adds the time between to its label; the
//! rest of a backward (candle's own ops: matmul, reshape and copy backwards) is what the traced
//! total leaves over. Off by default: the synchronisations cost a stall per op.

use candle_core::{Result, Tensor};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// 0: not decided yet (read `REFT_TRACE`), 1: off, 2: on.
static TRACE: AtomicU8 = AtomicU8::new(0);
/// Seconds and calls per label.
static TIMES: Mutex<BTreeMap<&'static str, (f64, usize)>> = Mutex::new(BTreeMap::new());

/// Turns backward tracing on or off for the whole process, overriding `REFT_TRACE`.
pub fn set_trace(on: bool) {
    TRACE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

fn on() -> bool {
    match TRACE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("REFT_TRACE").map(|v| v == "1").unwrap_or(false);
            TRACE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}

/// Runs `f`, and with tracing on adds its device time (synchronised on `t`'s device before and
/// after) to `label`.
pub(crate) fn traced<T>(label: &'static str, t: &Tensor, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !on() {
        return f();
    }
    t.device().synchronize()?;
    let t0 = Instant::now();
    let out = f()?;
    t.device().synchronize()?;
    let mut times = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    let e = times.entry(label).or_insert((0.0, 0));
    e.0 += t0.elapsed().as_secs_f64();
    e.1 += 1;
    Ok(out)
}

/// The traced `(label, seconds, calls)` since the last call, which clears them.
pub fn take_trace() -> Vec<(&'static str, f64, usize)> {
    let mut times = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *times).into_iter().map(|(k, (s, n))| (k, s, n)).collect()
}
