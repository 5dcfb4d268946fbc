//! Test helpers shared by the workspace: a global allocator that counts allocations per thread,
//! the repository's folders, and a free TCP port for tests of network edges.
//!
//! A test binary installs it with
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

/// `../shared/data` beside the checkout (the recordings tests may read; they skip, saying so,
/// when it is missing).
pub fn shared_data() -> std::path::PathBuf {
    repo_root().join("../shared/data")
}
