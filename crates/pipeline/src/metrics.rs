//! Per-stage measurements: latency histogram (hdrhistogram), items in/out, drops, input-queue
//! high-water mark, deadline misses, capture overruns; snapshots for `--stats`.
//!
//! The stage thread records into its own histogram (no lock per item) and merges it into the
//! shared one every [`FLUSH_EVERY`] (one uncontended lock, no allocation: same bounds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How often a stage merges its local histogram into the shared one.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Highest latency the histograms track (larger values saturate), nanoseconds.
const MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds, 3 significant digits, fixed bounds (never resizes).
pub fn new_histogram() -> Histogram<u64> {
    let mut h =
        Histogram::new_with_bounds(1, MAX_NS, 3).expect("static histogram bounds are valid");
    h.auto(false);
    h
}

/// Counters of one edge (channel), shared by its sender and receiver.
#[derive(Debug)]
pub struct EdgeMetrics {
    /// Edge name.
    pub name: String,
    /// Capacity in items.
    pub capacity: usize,
    /// Items dropped by the overload policy.
    pub drops: AtomicU64,
    /// Largest queue length seen right after a send.
    pub high_water: AtomicU64,
}

impl EdgeMetrics {
    pub(crate) fn new(name: &str, capacity: usize) -> Self {
        EdgeMetrics {
            name: name.into(),
            capacity,
            drops: AtomicU64::new(0),
            high_water: AtomicU64::new(0),
        }
    }
}

/// Counters of a network edge's sending or receiving stage.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Whether the stage is on a network edge (its counters are shown).
    pub enabled: std::sync::atomic::AtomicBool,
    /// Receiver: messages that never arrived (sequence numbers skipped).
    pub missing: AtomicU64,
    /// Receiver: messages older than one already received.
    pub reordered: AtomicU64,
    /// Receiver: messages that arrived later than the edge's `late_ms` after capture.
    pub late: AtomicU64,
    /// Receiver: times the sender started a new stream (it restarted).
    pub restarts: AtomicU64,
    /// Receiver: messages that could not be read (and were dropped).
    pub bad: AtomicU64,
    /// Sender: messages sent while no receiver was there (lost).
    pub unheard: AtomicU64,
}

impl NetCounters {
    fn snapshot(&self) -> Option<NetSnapshot> {
        self.enabled.load(Ordering::Relaxed).then(|| NetSnapshot {
            missing: self.missing.load(Ordering::Relaxed),
            reordered: self.reordered.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            bad: self.bad.load(Ordering::Relaxed),
            unheard: self.unheard.load(Ordering::Relaxed),
        })
    }
}

/// A copy of a network stage's message counters.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct NetSnapshot {
    /// Messages that never arrived.
    pub missing: u64,
    /// Messages older than one already received.
    pub reordered: u64,
    /// Messages later than the edge's limit.
    pub late: u64,
    /// New streams after the first (sender restarts).
    pub restarts: u64,
    /// Messages that could not be read.
    pub bad: u64,
    /// Messages sent with no receiver there.
    pub unheard: u64,
}

/// Live counters of one stage.
#[derive(Debug)]
pub struct StageMetrics {
    /// Stage name.
    pub name: String,
    /// Deadline per item, nanoseconds.
    pub deadline_ns: u64,
    /// Items received (sources: items produced).
    pub items_in: AtomicU64,
    /// Items sent downstream.
    pub items_out: AtomicU64,
    /// Items whose processing took longer than the deadline.
    pub deadline_misses: AtomicU64,
    /// Capture overruns: samples the audio callback could not put in the ring (capture stages only).
    pub overruns: AtomicU64,
    /// Message counters of a stage that sends or receives over the network (zenoh edges).
    pub net: NetCounters,
    pub(crate) input: Mutex<Option<Arc<EdgeMetrics>>>,
    pub(crate) hist: Mutex<Histogram<u64>>,
}

impl StageMetrics {
    pub(crate) fn new(name: &str, deadline: Duration) -> Self {
        StageMetrics {
            name: name.into(),
            deadline_ns: deadline.as_nanos().min(u64::MAX as u128) as u64,
            items_in: AtomicU64::new(0),
            items_out: AtomicU64::new(0),
            deadline_misses: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            net: NetCounters::default(),
            input: Mutex::new(None),
            hist: Mutex::new(new_histogram()),
        }
    }

    /// Merges a stage-local histogram into the shared one and resets the local one.
    pub(crate) fn flush(&self, local: &mut Histogram<u64>) {
        if local.is_empty() {
            return;
        }
        if let Ok(mut h) = self.hist.lock() {
            let _ = h.add(&*local);
        }
        local.reset();
    }

    /// A consistent-enough copy of the counters and latency quantiles.
    pub fn snapshot(&self) -> StageSnapshot {
        let (count, p50, p99, max) = match self.hist.lock() {
            Ok(h) if !h.is_empty() => (
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
            ),
            _ => (0, 0, 0, 0),
        };
        let input = self.input.lock().ok().and_then(|i| i.clone());
        let (drops, hwm, cap) = match &input {
            Some(e) => (
                e.drops.load(Ordering::Relaxed),
                e.high_water.load(Ordering::Relaxed),
                e.capacity,
            ),
            None => (0, 0, 0),
        };
        StageSnapshot {
            stage: self.name.clone(),
            items_in: self.items_in.load(Ordering::Relaxed),
            items_out: self.items_out.load(Ordering::Relaxed),
            drops,
            queue_high_water: hwm,
            queue_capacity: cap,
            deadline_ms: self.deadline_ns as f64 / 1e6,
            deadline_misses: self.deadline_misses.load(Ordering::Relaxed),
            overruns: self.overruns.load(Ordering::Relaxed),
            latency_count: count,
            p50_us: p50 as f64 / 1e3,
            p99_us: p99 as f64 / 1e3,
            max_us: max as f64 / 1e3,
            net: self.net.snapshot(),
        }
    }
}

/// A copy of one stage's counters at one moment.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageSnapshot {
    /// Stage name.
    pub stage: String,
    /// Items received (sources: produced).
    pub items_in: u64,
    /// Items sent downstream.
    pub items_out: u64,
    /// Items dropped on this stage's input edge by its overload policy.
    pub drops: u64,
    /// Largest input queue length seen.
    pub queue_high_water: u64,
    /// Capacity of the input queue (0 for sources).
    pub queue_capacity: usize,
    /// Deadline per item, ms.
    pub deadline_ms: f64,
    /// Items over the deadline.
    pub deadline_misses: u64,
    /// Capture overruns (samples lost before the ring; capture stage only).
    pub overruns: u64,
    /// Items timed.
    pub latency_count: u64,
    /// Median processing time per item, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Maximum, µs.
    pub max_us: f64,
    /// Message counters, for a stage on a network edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<NetSnapshot>,
}

impl std::fmt::Display for StageSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<10} in {:>7} out {:>7} p50 {:>8.1}us p99 {:>8.1}us max {:>8.1}us drops {:>5} queue_hwm {:>3}/{:<3} misses {:>4} (deadline {} ms)",
            self.stage,
            self.items_in,
            self.items_out,
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.drops,
            self.queue_high_water,
            self.queue_capacity,
            self.deadline_misses,
            self.deadline_ms
        )?;
        if self.overruns > 0 || self.stage == "capture" {
            write!(f, " overruns {}", self.overruns)?;
        }
        if let Some(n) = &self.net {
            write!(
                f,
                " | net missing {} reordered {} late {} restarts {} bad {} unheard {}",
                n.missing, n.reordered, n.late, n.restarts, n.bad, n.unheard
            )?;
        }
        Ok(())
    }
}
