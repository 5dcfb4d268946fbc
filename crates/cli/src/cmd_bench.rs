//! `sepstream bench`: the deadline harness. Drives the full audio chain (samples -> features ->
//! streaming keyword model -> decision) hop by hop over N minutes of synthetic audio, paced in real time
//! or as fast as possible, optionally with the other core busy, and reports per-hop latency
//! percentiles against the hop deadline, misses, real-time factor and bytes allocated per hop;
//! then a depth frame against 33 ms and a control tick against its period, the same way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use sepstream_audio::{DecisionConfig, FeatureStream, FrontendConfig, KeywordDetector};
use sepstream_nn::{ModelSpec, Network};
use sepstream_testkit::{thread_stats, CountingAlloc};
use sepstream_vision::nalgebra::{Isometry2, Vector2};
use sepstream_vision::perception::DepthPerception;
use sepstream_vision::robot::CommandMsg;
use sepstream_vision::rt::FifoGuard;
use sepstream_vision::{
    Controller, ControllerConfig, DepthNoise, DiffDrive, RobotCommand, SectorReading,
    SimDepthCamera, World, WorldParams,
};

/// Counts allocations per thread so the harness can prove a hop allocates nothing; a thread-local
/// add per allocation on top of the system allocator.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Options of `sepstream bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Keyword model: a spec file (its weights file is used when present, else random weights,
    /// seed 7) or a bundled model's name. Default: the bundled keyword model `kws`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Depth perception model measured against the 33 ms frame budget: a spec file or a bundled
    /// model's name; default: the bundled `depth_sectors`.
    #[arg(long)]
    depth_model: Option<PathBuf>,
    /// Depth frames to measure (rendered before timing starts).
    #[arg(long, default_value_t = 300)]
    depth_frames: usize,
    /// Control loop rate (Hz) whose period a control tick is measured against.
    #[arg(long, default_value_t = 200.0)]
    control_hz: f64,
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
    /// Run the measuring thread under SCHED_FIFO at this priority (1-99), as a real-time audio
    /// or control thread would; needs root or CAP_SYS_NICE, else it runs as usual and says so.
    #[arg(long)]
    fifo: Option<i32>,
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
    sched_fifo: bool,
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
    depth_frame: DeadlineFigures,
    control_tick: DeadlineFigures,
}

/// Per-item compute time of a periodic job against its deadline (as fast as possible).
#[derive(serde::Serialize)]
struct DeadlineFigures {
    what: String,
    items: u64,
    deadline_us: f64,
    compute: Percentiles,
    deadline_misses: u64,
    bytes_allocated_per_item: f64,
}

/// Times `items` calls of `job` (each given its index), with the allocation count of each.
fn time_items(
    what: String,
    items: u64,
    deadline: Duration,
    mut job: impl FnMut(u64),
) -> anyhow::Result<DeadlineFigures> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let (mut misses, mut bytes) = (0u64, 0u64);
    for i in 0..items {
        let before = thread_stats();
        let t0 = Instant::now();
        job(i);
        let took = t0.elapsed();
        bytes += thread_stats().bytes - before.bytes;
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
        bytes_allocated_per_item: bytes as f64 / items.max(1) as f64,
    })
}

/// One depth frame (160x120 from the simulated camera, row-streamed through the perception
/// network) against the 33 ms budget of a 30 Hz camera.
fn bench_depth(spec: Option<&std::path::Path>, frames: usize) -> anyhow::Result<DeadlineFigures> {
    let world = World::random(&WorldParams::default(), 1);
    let camera = SimDepthCamera::default_robot(DepthNoise::default(), 1);
    let (net, name) = crate::model_arg::network(spec, sepstream_nn::bundled::DEFAULT_DEPTH_MODEL)?;
    let mut perception = DepthPerception::new(std::sync::Arc::new(net), camera.intrinsics())
        .with_context(|| format!("depth model {name}"))?;
    // Frames along a slow turn, rendered before timing (rendering is the sensor's job).
    let rendered: Vec<_> = (0..frames.max(1))
        .map(|i| {
            let pose = Isometry2::new(Vector2::new(2.0, 3.0), 0.01 * i as f64);
            camera.capture(&world, &pose, i as u64)
        })
        .collect();
    for f in rendered.iter().take(5) {
        perception.process_frame(f, 0, 0.0, 0.0)?;
    }
    let mut failed = None;
    let figures = time_items(
        format!("depth frame {} ({} rows)", name, rendered[0].height()),
        rendered.len() as u64,
        Duration::from_secs_f64(1.0 / 30.0),
        |i| {
            if let Err(e) = perception.process_frame(&rendered[i as usize], i, 0.0, 0.0) {
                failed.get_or_insert(e);
            }
        },
    )?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(figures),
    }
}

/// One control tick (controller decision plus the drive's pose update) against its period.
fn bench_control(hz: f64, seconds: f64) -> anyhow::Result<DeadlineFigures> {
    let drive = DiffDrive::default();
    let mut controller = Controller::new(ControllerConfig::default(), drive);
    let period = 1.0 / hz;
    let reading = SectorReading::empty();
    let go = CommandMsg {
        seq: 1,
        command: RobotCommand::Go,
        arrival: 0.0,
    };
    let mut pose = Isometry2::new(Vector2::new(0.0, 0.0), 0.0);
    let ticks = (seconds * hz).ceil() as u64;
    time_items(
        format!("control tick at {hz} Hz"),
        ticks,
        Duration::from_secs_f64(period),
        |i| {
            let d = controller.tick(i as f64 * period, &reading, &go);
            pose = drive.advance(&pose, d.wheels, period);
            std::hint::black_box(&pose);
        },
    )
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
    let (net, weights, model_name) = match &args.model {
        Some(model_path) if model_path.is_file() => {
            let spec = ModelSpec::load(model_path)
                .with_context(|| format!("loading model spec {}", model_path.display()))?;
            match spec.weights_path(model_path).filter(|p| p.exists()) {
                Some(p) => (
                    Network::load(model_path)
                        .with_context(|| format!("loading {}", model_path.display()))?,
                    p.display().to_string(),
                    model_path.display().to_string(),
                ),
                None => (
                    Network::random(spec, 7)?,
                    "random (seed 7)".to_string(),
                    model_path.display().to_string(),
                ),
            }
        }
        other => {
            let (net, name) = crate::model_arg::keyword_network(other.as_deref())?;
            (net, name.clone(), name)
        }
    };
    let spec = net.spec().clone();
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
    let decision = match &spec.decision {
        Some(t) => DecisionConfig::from_table(t).context("the spec's [decision] table")?,
        None => DecisionConfig::default(),
    };
    let period = net.time_stride() as f64 / frontend.frame_rate();
    let mut detector = KeywordDetector::new(&decision, &spec.labels, period);
    let (mut frames, mut outputs, mut decisions) = (0u64, 0u64, 0u64);
    let mut misses = 0u64;
    let mut busy = Duration::ZERO;
    let mut alloc_bytes = 0u64;
    let mut alloc_count = 0u64;

    let fifo = args.fifo.map(FifoGuard::new);
    let sched_fifo = fifo.as_ref().is_some_and(FifoGuard::active);
    if args.fifo.is_some() && !sched_fifo {
        eprintln!("warning: SCHED_FIFO refused (needs root or CAP_SYS_NICE); measuring without it");
    }
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
        features.push(&block, |t, f| {
            frames += 1;
            if let Some(post) = net.step(&mut state, f) {
                outputs += 1;
                if detector.push_hit(t, post).is_some() {
                    decisions += 1;
                }
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
    // The frame and tick jobs, as fast as possible (the other core still loaded if asked).
    let depth_frame = bench_depth(args.depth_model.as_deref(), args.depth_frames)?;
    let control_tick = bench_control(args.control_hz, 60.0)?;
    drop(fifo);
    stop.store(true, Ordering::Relaxed);
    if let Some(l) = loader {
        let _ = l.join();
    }

    let audio_seconds = hops as f64 * deadline.as_secs_f64();
    let report = Report {
        model: model_name,
        weights,
        mode: if realtime { "realtime" } else { "fast" },
        load_other_core: args.load_other_core,
        sched_fifo,
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
        depth_frame,
        control_tick,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    let frames_ok = [&report.depth_frame, &report.control_tick]
        .iter()
        .all(|f| f.deadline_misses == 0 && f.bytes_allocated_per_item == 0.0);
    Ok(if misses == 0 && alloc_bytes == 0 && frames_ok {
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
    if r.sched_fifo {
        println!("measuring thread under SCHED_FIFO");
    }
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
    for f in [&r.depth_frame, &r.control_tick] {
        println!(
            "{} against {:.0} us (as fast as possible):",
            f.what, f.deadline_us
        );
        row(&format!("{} items", f.items), &f.compute);
        println!(
            "  deadline misses {}  bytes allocated per item {:.3}",
            f.deadline_misses, f.bytes_allocated_per_item
        );
    }
}
