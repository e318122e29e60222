//! The addon's allocator: mimalloc, told to keep freed memory for reuse.
//!
//! A training step allocates and frees the same large activation buffers every time (an
//! encoder's attention scores at batch 32 × 220 tokens are 74 MB per layer). glibc serves
//! anything above 32 MB with a fresh `mmap` and unmaps it on free, so every step page-faults
//! and zeroes those pages again: a fifth of a MiniLM GLUE step went to the kernel. mimalloc with
//! purging off reuses them instead; the same RTE run took 133 s instead of 183 s (BENCHMARKS.md).
//! The cost is that the process keeps its peak memory after a run. `MIMALLOC_PURGE_DELAY` set
//! in the environment (milliseconds; 10 is mimalloc's default) wins.

use std::os::raw::{c_int, c_long};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49, pinned).
const MI_OPTION_PURGE_DELAY: c_int = 15;

extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Turns purging off unless the user chose a delay. Runs when the addon loads.
#[napi_derive::module_init]
fn on_load() {
    keep_freed_memory();
}

fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: plain option setters of the linked mimalloc; the index is checked by a test.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// The purge delay now in force (for tests).
#[cfg(test)]
fn purge_delay() -> i64 {
    // SAFETY: as above.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::purge_delay;

    #[test]
    fn loading_turns_purging_off_at_the_right_option() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(purge_delay(), -1, "the load hook sets the purge delay");
        // mimalloc reads MIMALLOC_PURGE_DELAY into its purge-delay option, and the hook leaves a
        // user's value alone: a child process given 1234 must read 1234 at our index.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "alloc::tests::child_reads_the_environment", "--ignored"])
            .env("MIMALLOC_PURGE_DELAY", "1234")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "child: {text}");
    }

    #[test]
    #[ignore = "run by loading_turns_purging_off_at_the_right_option in a child process"]
    fn child_reads_the_environment() {
        if std::env::var("MIMALLOC_PURGE_DELAY").as_deref() == Ok("1234") {
            assert_eq!(purge_delay(), 1234);
        }
    }
}
