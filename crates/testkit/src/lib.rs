//! Test helpers shared by the workspace: a counting global allocator, the repository's folders, a free TCP port, float comparisons, and a visible line for a test that skips.
//!
//! - [`CountingAlloc`], [`count_allocations`]: allocations per thread (below).
//! - [`repo_root`], [`config_path`], [`shared_data`]: the checkout's folders and `../shared`.
//! - [`close`], [`check_close`], [`assert_close`]: floats equal up to a relative tolerance.
//! - [`skip`]: a test that cannot run here says so past the harness's output capture; such tests
//!   are named `..._or_skip_without_<what>`.
//! - [`free_port`]: a TCP port for tests of network edges.
//!
//! A test binary installs the counting allocator with
//! `#[global_allocator] static ALLOC: sepstream_testkit::CountingAlloc = sepstream_testkit::CountingAlloc;`
//! and then measures a closure with [`count_allocations`]. Counts are per thread, so tests that run
//! in parallel in the same binary do not disturb each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Allocation counts seen on one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Number of calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocations: u64,
    /// Bytes requested by those calls.
    pub bytes: u64,
}

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator that forwards to the system allocator and counts, per thread, every
/// allocation and reallocation with its size.
pub struct CountingAlloc;

fn record(size: usize) {
    // `try_with` so that allocations during thread teardown never panic.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + size as u64));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The counts of the calling thread so far.
pub fn thread_stats() -> AllocStats {
    AllocStats {
        allocations: ALLOCS.with(|c| c.get()),
        bytes: BYTES.with(|c| c.get()),
    }
}

/// Runs `f` and returns its result with the allocations it made on this thread.
/// Meaningful only in a binary whose global allocator is [`CountingAlloc`].
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    let before = thread_stats();
    let r = f();
    let after = thread_stats();
    (
        r,
        AllocStats {
            allocations: after.allocations - before.allocations,
            bytes: after.bytes - before.bytes,
        },
    )
}

/// A TCP port on 127.0.0.1 that is free right now (the OS picks it; a test binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// The repository's root folder (absolute), from any crate's tests.
pub fn repo_root() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A file of the repository's `configs/` folder, e.g. `config_path("depth_sectors.toml")`.
pub fn config_path(name: &str) -> std::path::PathBuf {
    repo_root().join("configs").join(name)
}

/// The words scripts/make_sample_wav.sh put in assets/sample_keywords.wav, from
/// assets/sample_keywords.txt: (keyword, start s, end s), in order.
pub fn sample_keywords() -> Vec<(String, f64, f64)> {
    std::fs::read_to_string(repo_root().join("assets/sample_keywords.txt"))
        .expect("assets/sample_keywords.txt")
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            (
                v[0].to_string(),
                v[1].parse().expect("start time"),
                v[2].parse().expect("end time"),
            )
        })
        .collect()
}

/// `../shared/data` beside the checkout (the recordings tests may read; they skip, saying so,
/// when it is missing).
pub fn shared_data() -> std::path::PathBuf {
    repo_root().join("../shared/data")
}

/// Set (to anything) to make [`skip`] fail the test instead: for a machine that provides every
/// resource, so that no test passes without having run.
pub const NO_SKIP_VARIABLE: &str = "SEPSTREAM_TESTS_NO_SKIP";

/// Says that the calling test skips and why, as `skipped: <test>: <why>` written straight to
/// stderr (past the test harness's capture, so it shows in a plain `cargo test`); the test then
/// returns. With [`NO_SKIP_VARIABLE`] set it panics with the same line instead.
#[track_caller]
pub fn skip(why: impl std::fmt::Display) {
    use std::io::Write;
    let thread = std::thread::current();
    let line = format!("skipped: {}: {why}", thread.name().unwrap_or("a test"));
    if std::env::var_os(NO_SKIP_VARIABLE).is_some() {
        panic!("{line} ({NO_SKIP_VARIABLE} is set)");
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `a` equals `b` up to `rel` relative to the larger magnitude, absolute below 1:
/// `|a - b| <= rel * max(|a|, |b|, 1)`.
pub fn close(a: f32, b: f32, rel: f32) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

/// Every value of `a` [`close`] to the one of `b` at its index (and as many values), else the
/// first that is not, as a message.
pub fn check_close(a: &[f32], b: &[f32], rel: f32) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("lengths {} vs {}", a.len(), b.len()));
    }
    match a.iter().zip(b).position(|(x, y)| !close(*x, *y, rel)) {
        None => Ok(()),
        Some(i) => Err(format!("value {i}: {} vs {}", a[i], b[i])),
    }
}

/// Asserts [`check_close`], the panic message starting with `what`.
#[track_caller]
pub fn assert_close(a: &[f32], b: &[f32], rel: f32, what: &str) {
    if let Err(e) = check_close(a, b, rel) {
        panic!("{what}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_is_relative_above_one_and_absolute_below() {
        assert!(close(1000.0, 1000.009, 1e-5));
        assert!(!close(1000.0, 1000.02, 1e-5));
        assert!(close(0.0, 9e-6, 1e-5));
        assert!(!close(0.0, 2e-5, 1e-5));
        assert_eq!(
            check_close(&[1.0, 2.0], &[1.0, 2.1], 1e-3),
            Err("value 1: 2 vs 2.1".to_string())
        );
        assert!(check_close(&[1.0], &[1.0, 2.0], 1e-3).is_err());
    }
}
