//! Latest-value handoff between one writer thread and one reader thread: a lock-free triple
//! buffer. Neither side ever waits, locks or allocates; the reader always sees the newest
//! complete value the writer published (older ones are overwritten, never queued).
//!
//! Three slots: the writer owns one (the back buffer), the reader owns one (the front buffer),
//! and the third is shared through one atomic byte holding its index plus a "fresh" bit. Publish
//! = write the back buffer, then swap it with the shared slot (marking it fresh). Read = if the
//! shared slot is fresh, swap it with the front buffer. A slot is only ever touched by the side
//! that owns its index, so no data is shared without the atomic swap's acquire/release ordering.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const INDEX_MASK: u8 = 0b011;
const FRESH: u8 = 0b100;

struct Shared<T> {
    slots: [UnsafeCell<T>; 3],
    /// Index of the shared (middle) slot, plus [`FRESH`] when the writer has published into it
    /// since the reader last took it.
    middle: AtomicU8,
}

// SAFETY: each slot is accessed by exactly one side at a time: the writer through `back`, the
// reader through `front`; ownership of the middle slot changes hands only through the atomic
// swap (AcqRel), which orders the writes of one side before the reads of the other.
unsafe impl<T: Send> Sync for Shared<T> {}

/// The publishing side. `Send`, not `Clone` (single producer).
pub struct LatestWriter<T> {
    shared: Arc<Shared<T>>,
    back: u8,
}

/// The reading side. `Send`, not `Clone` (single consumer).
pub struct LatestReader<T> {
    shared: Arc<Shared<T>>,
    front: u8,
}

// SAFETY: the handle owns its slot index exclusively; moving it to another thread moves that
// ownership. T: Send is required because values cross threads.
unsafe impl<T: Send> Send for LatestWriter<T> {}
unsafe impl<T: Send> Send for LatestReader<T> {}

/// A new latest-value slot holding `initial` (cloned into all three buffers, which are the only
/// allocations it ever makes).
pub fn latest<T: Clone>(initial: T) -> (LatestWriter<T>, LatestReader<T>) {
    let shared = Arc::new(Shared {
        slots: [
            UnsafeCell::new(initial.clone()),
            UnsafeCell::new(initial.clone()),
            UnsafeCell::new(initial),
        ],
        middle: AtomicU8::new(1),
    });
    (
        LatestWriter {
            shared: shared.clone(),
            back: 0,
        },
        LatestReader { shared, front: 2 },
    )
}

impl<T> LatestWriter<T> {
    /// The back buffer, to fill in place (it holds an older value: overwrite all of it).
    pub fn back_mut(&mut self) -> &mut T {
        // SAFETY: `back` is owned by this writer only (see module docs).
        unsafe { &mut *self.shared.slots[self.back as usize].get() }
    }

    /// Publishes the back buffer as the newest value. Wait-free.
    pub fn publish(&mut self) {
        let old = self.shared.middle.swap(self.back | FRESH, Ordering::AcqRel);
        self.back = old & INDEX_MASK;
    }

    /// Writes `value` into the back buffer and publishes it.
    pub fn write(&mut self, value: T) {
        *self.back_mut() = value;
        self.publish();
    }
}

impl<T> LatestReader<T> {
    /// Takes the newest published value if there is one, and returns the current front value
    /// (the newest one seen so far). Wait-free.
    pub fn latest(&mut self) -> &T {
        self.update();
        // SAFETY: `front` is owned by this reader only.
        unsafe { &*self.shared.slots[self.front as usize].get() }
    }

    /// True (and the front buffer updated) when a new value was published since the last read.
    pub fn update(&mut self) -> bool {
        if self.shared.middle.load(Ordering::Relaxed) & FRESH == 0 {
            return false;
        }
        let old = self.shared.middle.swap(self.front, Ordering::AcqRel);
        self.front = old & INDEX_MASK;
        true
    }

    /// The current front value without looking for a newer one.
    pub fn current(&self) -> &T {
        // SAFETY: `front` is owned by this reader only.
        unsafe { &*self.shared.slots[self.front as usize].get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_sees_newest_value_only() {
        let (mut w, mut r) = latest(0u64);
        assert_eq!(*r.latest(), 0);
        w.write(1);
        w.write(2);
        assert!(r.update());
        assert_eq!(*r.current(), 2);
        assert!(!r.update());
        assert_eq!(*r.latest(), 2);
        w.write(3);
        assert_eq!(*r.latest(), 3);
    }

    #[test]
    fn values_are_never_torn_across_threads() {
        // The writer publishes arrays whose elements are all equal; a torn read would mix them.
        let (mut w, mut r) = latest([0u64; 16]);
        let writer = std::thread::spawn(move || {
            for i in 1..=200_000u64 {
                *w.back_mut() = [i; 16];
                w.publish();
            }
        });
        let mut last = 0;
        loop {
            let v = *r.latest();
            assert!(v.iter().all(|&x| x == v[0]), "torn read {v:?}");
            assert!(v[0] >= last, "went back in time");
            last = v[0];
            if last == 200_000 {
                break;
            }
        }
        writer.join().unwrap();
    }
}
