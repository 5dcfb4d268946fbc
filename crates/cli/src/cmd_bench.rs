//! `sepstream bench`: the deadline harness. Drives the full audio chain (samples -> features ->
//! streaming DS-CNN -> decision) hop by hop over N minutes of synthetic audio, paced in real time
//! or as fast as possible, optionally with the other core busy, and reports per-hop latency
//! percentiles against the hop deadline, misses, real-time factor and bytes allocated per hop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use sepstream_audio::{FeatureStream, FrontendConfig};
use sepstream_nn::{ModelSpec, Network};
use sepstream_testkit::{thread_stats, CountingAlloc};

/// Counts allocations per thread so the harness can prove a hop allocates nothing; a thread-local
/// add per allocation on top of the system allocator.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Options of `sepstream bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Model spec; its weights file is used when present, else random weights (seed 7).
    #[arg(long, default_value = "configs/ds_cnn_s.toml")]
    model: PathBuf,
    /// Minutes of audio to process.
    #[arg(long, default_value_t = 1.0)]
    minutes: f64,
    /// Pace hops in real time (sleep until each hop's samples would have arrived).
    #[arg(long, conflicts_with = "fast")]
    realtime: bool,
    /// Process as fast as possible (the default).
    #[arg(long)]
    fast: bool,
    /// Keep the other core busy with a spinning thread while measuring.
    #[arg(long)]
    load_other_core: bool,
    /// Input sample rate of the synthetic audio (resampled by the front end when it differs
    /// from the model's).
    #[arg(long, default_value_t = 16000)]
    input_rate: u32,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Percentiles of one histogram, in microseconds.
#[derive(serde::Serialize)]
struct Percentiles {
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    mean_us: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
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

#[derive(serde::Serialize)]
struct Report {
    model: String,
    weights: String,
    mode: &'static str,
    load_other_core: bool,
    audio_seconds: f64,
    input_rate: u32,
    hop_samples: usize,
    hops: u64,
    hop_deadline_us: f64,
    /// Compute time of a hop: samples pushed -> features -> network -> decision.
    compute: Percentiles,
    /// Real-time mode: hop end minus the time its last sample arrived (wake-up lateness +
    /// compute); equals compute in fast mode.
    deadline_latency: Percentiles,
    deadline_misses: u64,
    real_time_factor: f64,
    bytes_allocated_per_hop: f64,
    allocations_total: u64,
    feature_frames: u64,
    network_outputs: u64,
    decisions: u64,
    depth_frame: &'static str,
    control_tick: &'static str,
}

/// Deterministic synthetic "speech-like" audio: noise plus a wandering tone, written into a
/// preallocated block (no allocation per hop).
struct Synth {
    state: u32,
    phase: f32,
    t: u64,
    rate: f32,
}

impl Synth {
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

pub fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    if !(args.minutes.is_finite() && args.minutes > 0.0) {
        anyhow::bail!("--minutes must be a positive number, got {}", args.minutes);
    }
    let spec = ModelSpec::load(&args.model)
        .with_context(|| format!("loading model spec {}", args.model.display()))?;
    let weights_file = spec.weights_path(&args.model).filter(|p| p.exists());
    let (net, weights) = match &weights_file {
        Some(p) => (
            Network::load(&args.model)
                .with_context(|| format!("loading {}", args.model.display()))?,
            p.display().to_string(),
        ),
        None => (
            Network::random(spec.clone(), 7)?,
            "random (seed 7)".to_string(),
        ),
    };
    let frontend = match &spec.frontend {
        Some(t) => FrontendConfig::from_table(t).context("the spec's [frontend] table")?,
        None => {
            // No [frontend] table (the reference DS-CNN spec): MFCCs at the model's width.
            FrontendConfig {
                n_mfcc: Some(net.input_shape().len()),
                ..FrontendConfig::default()
            }
        }
    };
    if frontend.feature_len() != net.input_shape().len() {
        anyhow::bail!(
            "front end gives {} features per frame, the model reads {}",
            frontend.feature_len(),
            net.input_shape().len()
        );
    }
    let mut features = FeatureStream::new(&frontend, args.input_rate)?;
    let mut state = net.new_state();

    // One hop = one feature frame period of input samples.
    let hop_s = frontend.hop as f64 / frontend.sample_rate as f64;
    let hop_samples = (hop_s * args.input_rate as f64).round().max(1.0) as usize;
    let deadline = Duration::from_secs_f64(hop_samples as f64 / args.input_rate as f64);
    let hops = (args.minutes * 60.0 / deadline.as_secs_f64()).ceil() as u64;
    let realtime = args.realtime && !args.fast;

    let stop = Arc::new(AtomicBool::new(false));
    let loader = args.load_other_core.then(|| {
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
    });

    let mut compute = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut block = vec![0.0f32; hop_samples];
    let mut synth = Synth {
        state: 12345,
        phase: 0.0,
        t: 0,
        rate: args.input_rate as f32,
    };
    let labels = spec.labels.len();
    let (mut frames, mut outputs, mut decisions, mut last_label) = (0u64, 0u64, 0u64, usize::MAX);
    let mut misses = 0u64;
    let mut busy = Duration::ZERO;
    let mut alloc_bytes = 0u64;
    let mut alloc_count = 0u64;

    // Warm-up: one second of audio, not measured (first touches of every buffer).
    for _ in 0..(1.0 / deadline.as_secs_f64()) as usize {
        synth.fill(&mut block);
        features.push(&block, |_, f| {
            net.step(&mut state, f);
        });
    }
    let start = Instant::now();
    for hop in 0..hops {
        // The hop's samples "arrive" at `due`: sleep until then in real-time mode.
        synth.fill(&mut block);
        let due = start + deadline.mul_f64((hop + 1) as f64);
        if realtime {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let before = thread_stats();
        let t0 = Instant::now();
        features.push(&block, |_, f| {
            frames += 1;
            if let Some(post) = net.step(&mut state, f) {
                outputs += 1;
                // Decision stand-in until KeywordDetector lands: argmax over a threshold,
                // counted when the winning label changes.
                let (best, p) = post
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
                if p > 0.5 && best != last_label && best < labels {
                    decisions += 1;
                }
                last_label = best;
            }
        });
        let t1 = Instant::now();
        let after = thread_stats();
        alloc_bytes += after.bytes - before.bytes;
        alloc_count += after.allocations - before.allocations;
        let took = t1 - t0;
        busy += took;
        let late = if realtime {
            t1.saturating_duration_since(due)
        } else {
            took
        };
        if late > deadline {
            misses += 1;
        }
        compute.saturating_record(took.as_nanos() as u64);
        latency.saturating_record(late.as_nanos() as u64);
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(l) = loader {
        let _ = l.join();
    }

    let audio_seconds = hops as f64 * deadline.as_secs_f64();
    let report = Report {
        model: args.model.display().to_string(),
        weights,
        mode: if realtime { "realtime" } else { "fast" },
        load_other_core: args.load_other_core,
        audio_seconds,
        input_rate: args.input_rate,
        hop_samples,
        hops,
        hop_deadline_us: deadline.as_secs_f64() * 1e6,
        compute: Percentiles::of(&compute),
        deadline_latency: Percentiles::of(&latency),
        deadline_misses: misses,
        real_time_factor: busy.as_secs_f64() / audio_seconds,
        bytes_allocated_per_hop: alloc_bytes as f64 / hops as f64,
        allocations_total: alloc_count,
        feature_frames: frames,
        network_outputs: outputs,
        decisions,
        depth_frame: "not measured: no depth pipeline in this harness yet",
        control_tick: "not measured: no control loop in this harness yet",
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if misses == 0 && alloc_bytes == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(2)
    })
}

fn print_text(r: &Report) {
    println!(
        "sepstream bench: {} ({} weights), {:.1} s of audio at {} Hz, {} hops of {} samples, {} pacing{}",
        r.model,
        r.weights,
        r.audio_seconds,
        r.input_rate,
        r.hops,
        r.hop_samples,
        r.mode,
        if r.load_other_core { ", other core loaded" } else { "" }
    );
    println!("hop deadline {:.0} us", r.hop_deadline_us);
    let row = |name: &str, p: &Percentiles| {
        println!(
            "  {name:<18} p50 {:>9.1} us  p99 {:>9.1} us  p99.9 {:>9.1} us  max {:>9.1} us  mean {:>8.1} us",
            p.p50_us, p.p99_us, p.p999_us, p.max_us, p.mean_us
        )
    };
    row("hop compute", &r.compute);
    row("deadline latency", &r.deadline_latency);
    println!(
        "  deadline misses {}  real-time factor {:.5} ({:.0}x faster than real time)",
        r.deadline_misses,
        r.real_time_factor,
        1.0 / r.real_time_factor
    );
    println!(
        "  bytes allocated per hop {:.3} ({} allocations in total)",
        r.bytes_allocated_per_hop, r.allocations_total
    );
    println!(
        "  feature frames {}, network outputs {}, decisions {}",
        r.feature_frames, r.network_outputs, r.decisions
    );
    println!(
        "  depth frame: {}; control tick: {}",
        r.depth_frame, r.control_tick
    );
}
