//! The deadline harness shared by `sepstream bench` and the criterion benches: per-item compute time of a periodic job against its deadline, and the audio chain measured hop by hop.
//!
//! - [`time_items`]: any periodic job (a depth frame, a control tick) timed item by item against
//!   its deadline: p50 / p99 / p99.9 / max / mean, misses, bytes allocated per item.
//! - [`measure_model_hops`]: samples -> features -> streaming keyword network -> decision (a
//!   [`Spotter`] of a [`KwsModel`]), one hop (one feature frame period of input samples) at a
//!   time over synthetic audio, paced in real time or as fast as possible; per-hop compute and
//!   deadline latency, misses, real-time factor, allocations. [`measure_hops`] is the same for a
//!   bare network (the criterion benches').
//! - [`CoreLoad`]: a thread keeping another core busy while measuring.
//!
//! Allocations are counted only when the caller passes an [`AllocProbe`], a function reading the
//! calling thread's counts from a counting global allocator (`sepstream_testkit::CountingAlloc`);
//! without one the allocation figures are `None`.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sepstream_kws::{FrontendConfig, KwsError, KwsModel, ModelSettings, Spotter};
use sepstream_nn::Network;

/// Errors of the deadline harness.
#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    /// A latency histogram could not be created.
    #[error("latency histogram")]
    Histogram(#[source] hdrhistogram::CreationError),
    /// The keyword model's settings do not fit its network, or its front end cannot be made
    /// for the input rate.
    #[error("keyword chain")]
    Kws(#[source] Box<KwsError>),
    /// The length of audio to measure is not a positive number of seconds.
    #[error("audio to measure must be a positive number of seconds, got {0}")]
    AudioLength(f64),
    /// One item of a timed job failed.
    #[error("{what}: item {item} failed")]
    Job {
        /// The job (as passed to [`time_items`]).
        what: String,
        /// Index of the failing item.
        item: u64,
        /// The job's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<KwsError> for DeadlineError {
    fn from(e: KwsError) -> Self {
        DeadlineError::Kws(Box::new(e))
    }
}

/// Allocation counts of one thread so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocCount {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocations: u64,
    /// Bytes requested by those calls.
    pub bytes: u64,
}

/// Reads the calling thread's allocation counts (from a counting global allocator).
pub type AllocProbe = fn() -> AllocCount;

/// Percentiles of one latency histogram, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1e3;
        Self {
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1e3,
        }
    }
}

/// A histogram of nanoseconds from 1 ns to 60 s, 3 significant digits.
fn nanosecond_histogram() -> Result<Histogram<u64>, DeadlineError> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(DeadlineError::Histogram)
}

/// Per-item compute time of a periodic job against its deadline (as fast as possible).
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeadlineFigures {
    /// What one item is.
    pub what: String,
    /// Items timed.
    pub items: u64,
    /// The deadline of one item, microseconds.
    pub deadline_us: f64,
    /// Compute time per item.
    pub compute: Percentiles,
    /// Items that took longer than the deadline.
    pub deadline_misses: u64,
    /// Bytes allocated per item; `None` when allocations were not counted.
    pub bytes_allocated_per_item: Option<f64>,
}

impl DeadlineFigures {
    /// No item missed its deadline and none allocated (an uncounted run passes the second).
    pub fn within_budget(&self) -> bool {
        self.deadline_misses == 0 && self.bytes_allocated_per_item.unwrap_or(0.0) == 0.0
    }
}

/// Times `items` calls of `job` (each given its index) against `deadline`, with the bytes each
/// allocates when `probe` is given. Stops at the first item that fails.
pub fn time_items<E>(
    what: impl Into<String>,
    items: u64,
    deadline: Duration,
    probe: Option<AllocProbe>,
    mut job: impl FnMut(u64) -> Result<(), E>,
) -> Result<DeadlineFigures, DeadlineError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let what = what.into();
    let mut h = nanosecond_histogram()?;
    let (mut misses, mut bytes) = (0u64, 0u64);
    let count = || probe.map(|p| p()).unwrap_or_default();
    for i in 0..items {
        let before = count();
        let t0 = Instant::now();
        let result = job(i);
        let took = t0.elapsed();
        bytes += count().bytes - before.bytes;
        if let Err(e) = result {
            return Err(DeadlineError::Job {
                what,
                item: i,
                source: e.into(),
            });
        }
        if took > deadline {
            misses += 1;
        }
        h.saturating_record(took.as_nanos() as u64);
    }
    Ok(DeadlineFigures {
        what,
        items,
        deadline_us: deadline.as_secs_f64() * 1e6,
        compute: Percentiles::of(&h),
        deadline_misses: misses,
        bytes_allocated_per_item: probe.map(|_| bytes as f64 / items.max(1) as f64),
    })
}

/// How [`measure_hops`] runs.
#[derive(Clone, Debug, PartialEq)]
pub struct HopRun {
    /// Sample rate of the synthetic input audio (resampled by the front end when it differs
    /// from the model's).
    pub input_rate: u32,
    /// Seconds of audio to process (after one second of unmeasured warm-up).
    pub audio_seconds: f64,
    /// Pace hops in real time (sleep until each hop's samples would have arrived); else as fast
    /// as possible.
    pub realtime: bool,
    /// Recorded audio at `input_rate`, played in a loop, instead of the synthetic signal (e.g.
    /// spoken keywords, so that the decisions and a second-stage check run).
    pub audio: Option<Arc<[f32]>>,
}

impl Default for HopRun {
    fn default() -> Self {
        Self {
            input_rate: 16_000,
            audio_seconds: 60.0,
            realtime: false,
            audio: None,
        }
    }
}

/// The audio chain's figures per hop.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HopFigures {
    /// Seconds of audio measured.
    pub audio_seconds: f64,
    /// Sample rate of the input audio.
    pub input_rate: u32,
    /// Input samples per hop.
    pub hop_samples: usize,
    /// Hops measured.
    pub hops: u64,
    /// The deadline of one hop (its duration of audio), microseconds.
    pub hop_deadline_us: f64,
    /// Compute time of a hop: samples pushed -> features -> network -> decision.
    pub compute: Percentiles,
    /// Real-time pacing: hop end minus the time its last sample arrived (wake-up lateness +
    /// compute); equals compute when run as fast as possible.
    pub deadline_latency: Percentiles,
    /// Hops whose deadline latency exceeded the hop deadline.
    pub deadline_misses: u64,
    /// Compute time over audio time.
    pub real_time_factor: f64,
    /// Bytes allocated per hop; `None` when allocations were not counted.
    pub bytes_allocated_per_hop: Option<f64>,
    /// Allocations over the whole run; `None` when not counted.
    pub allocations_total: Option<u64>,
    /// Feature frames the front end produced.
    pub feature_frames: u64,
    /// Outputs of the network (one per time stride).
    pub network_outputs: u64,
    /// Keyword decisions.
    pub decisions: u64,
    /// Decisions the second-stage check (`[decision.confirm]`) turned down.
    pub rejected: u64,
    /// Compute time of the hops in which the second-stage check ran (a decision kept or turned
    /// down); `None` without a check or when none ran.
    pub checked_compute: Option<Percentiles>,
}

impl HopFigures {
    /// No hop missed its deadline and none allocated (an uncounted run passes the second).
    pub fn within_budget(&self) -> bool {
        self.deadline_misses == 0 && self.bytes_allocated_per_hop.unwrap_or(0.0) == 0.0
    }
}

/// The settings [`measure_hops`] runs a bare network with: its spec's, as
/// [`ModelSettings::from_spec`] reads them, except that a spec with no `[frontend]` table (the
/// shape-only reference DS-CNN specs, e.g. `configs/ds_cnn_s.toml`) gets MFCCs at the network's
/// input width.
pub fn bare_network_settings(net: &Network) -> Result<ModelSettings, DeadlineError> {
    let mut settings = ModelSettings::from_spec(net.spec())?;
    if net.spec().frontend.is_none() {
        settings.frontend = FrontendConfig {
            n_mfcc: Some(net.input_shape().len()),
            ..FrontendConfig::default()
        };
    }
    Ok(settings)
}

/// Deterministic synthetic "speech-like" audio: noise plus a wandering tone in bursts, written
/// into a preallocated block (no allocation per hop).
struct SyntheticSpeech {
    state: u32,
    phase: f32,
    t: u64,
    rate: f32,
}

impl SyntheticSpeech {
    fn new(rate: u32) -> Self {
        Self {
            state: 12345,
            phase: 0.0,
            t: 0,
            rate: rate as f32,
        }
    }

    fn fill(&mut self, out: &mut [f32]) {
        for s in out.iter_mut() {
            self.state = self
                .state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let noise = (self.state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let f = 300.0 + 200.0 * ((self.t as f32 / self.rate) * 0.7).sin();
            self.phase =
                (self.phase + std::f32::consts::TAU * f / self.rate) % std::f32::consts::TAU;
            let burst = if (self.t / (self.rate as u64 / 2)).is_multiple_of(3) {
                0.5
            } else {
                0.05
            };
            *s = 0.05 * noise + burst * self.phase.sin();
            self.t += 1;
        }
    }
}

/// Where the measured hops' samples come from.
enum Source {
    Synthetic(SyntheticSpeech),
    Looped { samples: Arc<[f32]>, at: usize },
}

impl Source {
    fn fill(&mut self, out: &mut [f32]) {
        match self {
            Source::Synthetic(s) => s.fill(out),
            Source::Looped { samples, at } => {
                for o in out.iter_mut() {
                    *o = samples[*at];
                    *at = (*at + 1) % samples.len();
                }
            }
        }
    }
}

/// Drives the full audio chain of a keyword model (a [`Spotter`] with its front end and decision
/// settings) hop by hop over `run.audio_seconds` of synthetic audio on the calling thread, and
/// measures each hop against the hop deadline; allocations are counted when `probe` is given.
pub fn measure_model_hops(
    model: &KwsModel,
    run: &HopRun,
    probe: Option<AllocProbe>,
) -> Result<HopFigures, DeadlineError> {
    check_length(run)?;
    measure_spotter(Spotter::new(model, run.input_rate)?, run, probe)
}

/// [`measure_model_hops`] for a bare network, with [`bare_network_settings`] (the criterion
/// benches' reference specs have no `[frontend]` table).
pub fn measure_hops(
    net: &Network,
    run: &HopRun,
    probe: Option<AllocProbe>,
) -> Result<HopFigures, DeadlineError> {
    check_length(run)?;
    let ModelSettings { frontend, decision } = bare_network_settings(net)?;
    let spotter = Spotter::with_network(net, &frontend, &decision, run.input_rate)?;
    measure_spotter(spotter, run, probe)
}

fn check_length(run: &HopRun) -> Result<(), DeadlineError> {
    if run.audio_seconds.is_finite() && run.audio_seconds > 0.0 {
        Ok(())
    } else {
        Err(DeadlineError::AudioLength(run.audio_seconds))
    }
}

/// The measured loop: one hop of input samples at a time through `spotter` (features, network
/// step, decision), timed from the samples pushed to the hop's last callback.
fn measure_spotter<N: Deref<Target = Network>>(
    mut spotter: Spotter<N>,
    run: &HopRun,
    probe: Option<AllocProbe>,
) -> Result<HopFigures, DeadlineError> {
    // One hop = one feature frame period of input samples.
    let frontend = spotter.frontend();
    let hop_s = frontend.hop as f64 / frontend.sample_rate as f64;
    let hop_samples = (hop_s * run.input_rate as f64).round().max(1.0) as usize;
    let deadline = Duration::from_secs_f64(hop_samples as f64 / run.input_rate as f64);
    let hops = (run.audio_seconds / deadline.as_secs_f64()).ceil() as u64;

    let mut compute = nanosecond_histogram()?;
    let mut latency = nanosecond_histogram()?;
    let mut block = vec![0.0f32; hop_samples];
    let mut audio = match &run.audio {
        Some(samples) if !samples.is_empty() => Source::Looped {
            samples: Arc::clone(samples),
            at: 0,
        },
        Some(_) => return Err(DeadlineError::AudioLength(0.0)),
        None => Source::Synthetic(SyntheticSpeech::new(run.input_rate)),
    };
    let checking = spotter.confirm().is_some();
    let mut checked = nanosecond_histogram()?;
    let mut rejected = 0u64;
    let count = || probe.map(|p| p()).unwrap_or_default();
    let (mut frames, mut outputs, mut decisions) = (0u64, 0u64, 0u64);
    let mut misses = 0u64;
    let mut busy = Duration::ZERO;
    let (mut alloc_bytes, mut alloc_count) = (0u64, 0u64);

    // Warm-up: one second of audio, not measured (first touches of every buffer).
    for _ in 0..(1.0 / deadline.as_secs_f64()) as usize {
        audio.fill(&mut block);
        spotter.push(&block, |_| {});
    }
    let start = Instant::now();
    for hop in 0..hops {
        // The hop's samples "arrive" at `due`: sleep until then in real-time mode.
        audio.fill(&mut block);
        let due = start + deadline.mul_f64((hop + 1) as f64);
        if run.realtime {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let before = count();
        let decided = decisions + rejected;
        let t0 = Instant::now();
        spotter.push_hops(&block, |h| {
            frames += 1;
            outputs += u64::from(h.posteriors.is_some());
            decisions += u64::from(h.hit.is_some());
            rejected += u64::from(h.rejected.is_some());
        });
        let t1 = Instant::now();
        let after = count();
        alloc_bytes += after.bytes - before.bytes;
        alloc_count += after.allocations - before.allocations;
        let took = t1 - t0;
        busy += took;
        let late = if run.realtime {
            t1.saturating_duration_since(due)
        } else {
            took
        };
        if late > deadline {
            misses += 1;
        }
        compute.saturating_record(took.as_nanos() as u64);
        latency.saturating_record(late.as_nanos() as u64);
        if checking && decisions + rejected > decided {
            checked.saturating_record(took.as_nanos() as u64);
        }
    }

    let audio_seconds = hops as f64 * deadline.as_secs_f64();
    Ok(HopFigures {
        audio_seconds,
        input_rate: run.input_rate,
        hop_samples,
        hops,
        hop_deadline_us: deadline.as_secs_f64() * 1e6,
        compute: Percentiles::of(&compute),
        deadline_latency: Percentiles::of(&latency),
        deadline_misses: misses,
        real_time_factor: busy.as_secs_f64() / audio_seconds,
        bytes_allocated_per_hop: probe.map(|_| alloc_bytes as f64 / hops as f64),
        allocations_total: probe.map(|_| alloc_count),
        feature_frames: frames,
        network_outputs: outputs,
        decisions,
        rejected,
        checked_compute: (!checked.is_empty()).then(|| Percentiles::of(&checked)),
    })
}

/// A thread spinning on integer arithmetic so that another core is busy while measuring;
/// stopped and joined by [`CoreLoad::stop`] or on drop.
pub struct CoreLoad {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl CoreLoad {
    /// Starts the spinning thread.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                        );
                    }
                }
                x
            })
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the spinning thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CoreLoad {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looped_keywords_run_the_decisions_and_time_the_hops_that_check() {
        let (samples, rate) = sepstream_audio::read_audio(
            &sepstream_testkit::repo_root().join("assets/sample_keywords.wav"),
        )
        .unwrap();
        let run = HopRun {
            input_rate: rate,
            audio_seconds: 20.0,
            audio: Some(Arc::from(samples)),
            ..HopRun::default()
        };
        let mut model = KwsModel::bundled_default().unwrap();
        let plain = measure_model_hops(&model, &run, None).unwrap();
        // Two loops of the four words and a bit (warm-up 1 s, then 20 s of an 8.7 s file).
        assert!(plain.decisions >= 8, "{} decisions", plain.decisions);
        assert_eq!((plain.rejected, plain.checked_compute), (0, None));
        let config = sepstream_kws::ConfirmConfig::with_model("hello_edge_ds_cnn_s");
        let confirm = sepstream_kws::Confirm::load(&config, None, &model.net).unwrap();
        model.confirm = Some(Arc::new(confirm));
        let checked = measure_model_hops(&model, &run, None).unwrap();
        assert_eq!(checked.decisions + checked.rejected, plain.decisions);
        let times = checked
            .checked_compute
            .expect("hops with a check are timed");
        assert!(times.max_us >= times.p50_us && times.p50_us > 0.0);
    }

    #[test]
    fn time_items_counts_misses_and_stops_at_a_failing_item() {
        let figures = time_items("sleep", 3, Duration::from_micros(1), None, |_| {
            std::thread::sleep(Duration::from_micros(50));
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
        assert_eq!(figures.items, 3);
        assert_eq!(figures.deadline_misses, 3);
        assert_eq!(figures.bytes_allocated_per_item, None);
        assert!(!figures.within_budget());

        let err = time_items("fails", 5, Duration::from_secs(1), None, |i| {
            if i == 2 {
                Err("broken")
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, DeadlineError::Job { item: 2, .. }), "{err}");
    }

    #[test]
    fn a_probe_is_read_around_each_item() {
        use std::cell::Cell;
        thread_local!(static BYTES: Cell<u64> = const { Cell::new(0) });
        fn probe() -> AllocCount {
            AllocCount {
                allocations: 0,
                bytes: BYTES.with(Cell::get),
            }
        }
        let figures = time_items("grows", 4, Duration::from_secs(1), Some(probe), |_| {
            BYTES.with(|b| b.set(b.get() + 8));
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
        assert_eq!(figures.bytes_allocated_per_item, Some(8.0));
    }

    #[test]
    fn a_bare_reference_spec_and_a_keyword_model_run_through_the_same_loop() {
        let run = HopRun {
            audio_seconds: 0.5,
            ..HopRun::default()
        };
        // configs/ds_cnn_s.toml has no [frontend]: MFCCs at its width of 10, 20 ms hops.
        let spec = sepstream_nn::ModelSpec::load(&sepstream_testkit::config_path("ds_cnn_s.toml"))
            .unwrap();
        let net = Network::random(spec, 7).unwrap();
        let h = measure_hops(&net, &run, None).unwrap();
        assert_eq!((h.hop_samples, h.hops, h.feature_frames), (320, 25, 25));
        assert_eq!(h.bytes_allocated_per_hop, None);
        // The same network as a keyword model takes the default front end (40 log-mels) and
        // does not fit it.
        let err = KwsModel::from_network(net, true).map(drop).unwrap_err();
        assert!(matches!(err, KwsError::Features { .. }), "{err}");

        let model = KwsModel::bundled_default().unwrap();
        let h = measure_model_hops(&model, &run, None).unwrap();
        assert_eq!(h.feature_frames, h.hops);
        assert!(h.network_outputs > 0);
    }
}
