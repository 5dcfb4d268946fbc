//! `sepstream bench`: the deadline harness. Drives the full audio chain (samples -> features ->
//! streaming keyword model -> decision) hop by hop over N minutes of synthetic audio, paced in real time
//! or as fast as possible, optionally with the other core busy, and reports per-hop latency
//! percentiles against the hop deadline, misses, real-time factor and bytes allocated per hop;
//! then a depth frame against 33 ms and a control tick against its period, the same way. The
//! measuring is `sepstream_pipeline::deadline`; this module picks the models and prints.

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sepstream_kws::{KwsModel, RANDOM_WEIGHTS_SEED};
use sepstream_pipeline::deadline::{
    measure_model_hops, time_items, AllocProbe, CoreLoad, DeadlineFigures, HopFigures, HopRun,
    Percentiles,
};
use sepstream_vision::nalgebra::{Isometry2, Vector2};
use sepstream_vision::perception::DepthPerception;
use sepstream_vision::robot::CommandMsg;
use sepstream_vision::rt::FifoGuard;
use sepstream_vision::{
    Controller, ControllerConfig, DepthNoise, DiffDrive, RobotCommand, SectorReading,
    SimDepthCamera, World, WorldParams,
};

/// Counts allocations per thread so the harness can prove a hop allocates nothing; a thread-local
/// add per allocation on top of the system allocator. Only in a build with `--features
/// alloc-count`: every other binary runs on the system allocator.
#[cfg(feature = "alloc-count")]
#[global_allocator]
static ALLOC: sepstream_testkit::CountingAlloc = sepstream_testkit::CountingAlloc;

/// Options of `sepstream bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Keyword model: a spec file (with its [frontend] and [decision] tables, as `sepstream wav`
    /// reads it; its weights file is used when present, else random weights, seed 1) or a
    /// bundled model's name. Default: the bundled keyword model `kws`.
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
    /// Play this audio file in a loop instead of the synthetic signal (at its own sample rate,
    /// which replaces --input-rate), e.g. assets/sample_keywords.wav so that decisions and a
    /// second-stage check run.
    #[arg(long, value_name = "FILE")]
    audio: Option<PathBuf>,
    #[command(flatten)]
    confirm: crate::model_arg::ConfirmArgs,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report {
    model: String,
    weights: String,
    mode: &'static str,
    load_other_core: bool,
    sched_fifo: bool,
    /// The second-stage check, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<String>,
    #[serde(flatten)]
    hops: HopFigures,
    depth_frame: DeadlineFigures,
    control_tick: DeadlineFigures,
}

/// The calling thread's counts from the counting global allocator above; `None` in a build
/// without it (feature `alloc-count`).
#[cfg(feature = "alloc-count")]
fn alloc_probe() -> Option<AllocProbe> {
    Some(|| {
        let s = sepstream_testkit::thread_stats();
        sepstream_pipeline::deadline::AllocCount {
            allocations: s.allocations,
            bytes: s.bytes,
        }
    })
}

#[cfg(not(feature = "alloc-count"))]
fn alloc_probe() -> Option<AllocProbe> {
    None
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
    Ok(time_items(
        format!("depth frame {} ({} rows)", name, rendered[0].height()),
        rendered.len() as u64,
        Duration::from_secs_f64(1.0 / 30.0),
        alloc_probe(),
        |i| {
            perception
                .process_frame(&rendered[i as usize], i, 0.0, 0.0)
                .map(drop)
        },
    )?)
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
    Ok(time_items(
        format!("control tick at {hz} Hz"),
        ticks,
        Duration::from_secs_f64(period),
        alloc_probe(),
        |i| {
            let d = controller.tick(i as f64 * period, &reading, &go);
            pose = drive.advance(&pose, d.wheels, period);
            std::hint::black_box(&pose);
            Ok::<(), Infallible>(())
        },
    )?)
}

pub fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    if !(args.minutes.is_finite() && args.minutes > 0.0) {
        anyhow::bail!("--minutes must be a positive number, got {}", args.minutes);
    }
    let (mut model, weights, model_name) = match &args.model {
        Some(model_path) if model_path.is_file() => {
            let model = KwsModel::load(model_path, true)
                .with_context(|| format!("loading {}", model_path.display()))?;
            let weights = match model.spec().weights_path(model_path) {
                Some(p) if !model.random => p.display().to_string(),
                _ => format!("random (seed {RANDOM_WEIGHTS_SEED})"),
            };
            (model, weights, model_path.display().to_string())
        }
        other => {
            let (model, name) = crate::model_arg::keyword_model(other.as_deref())?;
            (model, name.clone(), name)
        }
    };
    args.confirm.apply(&mut model)?;
    let (audio, input_rate) = match &args.audio {
        Some(p) => {
            let (samples, rate) = sepstream_audio::read_audio(p)
                .with_context(|| format!("--audio {}", p.display()))?;
            (Some(std::sync::Arc::from(samples)), rate)
        }
        None => (None, args.input_rate),
    };
    let realtime = args.realtime && !args.fast;
    let load = args.load_other_core.then(CoreLoad::start);
    let fifo = args.fifo.map(FifoGuard::new);
    let sched_fifo = fifo.as_ref().is_some_and(FifoGuard::active);
    if args.fifo.is_some() && !sched_fifo {
        eprintln!("warning: SCHED_FIFO refused (needs root or CAP_SYS_NICE); measuring without it");
    }
    let run = HopRun {
        input_rate,
        audio_seconds: args.minutes * 60.0,
        realtime,
        audio,
    };
    let hops = measure_model_hops(&model, &run, alloc_probe())?;
    // The frame and tick jobs, as fast as possible (the other core still loaded if asked).
    let depth_frame = bench_depth(args.depth_model.as_deref(), args.depth_frames)?;
    let control_tick = bench_control(args.control_hz, 60.0)?;
    drop(fifo);
    if let Some(load) = load {
        load.stop();
    }

    let report = Report {
        model: model_name,
        weights,
        mode: if realtime { "realtime" } else { "fast" },
        load_other_core: args.load_other_core,
        sched_fifo,
        confirm: crate::model_arg::describe_confirm(&model),
        hops,
        depth_frame,
        control_tick,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    let within_budget = report.hops.within_budget()
        && report.depth_frame.within_budget()
        && report.control_tick.within_budget();
    Ok(if within_budget {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(2)
    })
}

/// What the text report says in place of allocation figures the build does not count.
const NOT_COUNTED: &str =
    "allocation counts need a build with --features alloc-count (cargo build --release -p sepstream-cli --features alloc-count)";

fn print_text(r: &Report) {
    let h = &r.hops;
    println!(
        "sepstream bench: {} ({} weights), {:.1} s of audio at {} Hz, {} hops of {} samples, {} pacing{}",
        r.model,
        r.weights,
        h.audio_seconds,
        h.input_rate,
        h.hops,
        h.hop_samples,
        r.mode,
        if r.load_other_core { ", other core loaded" } else { "" }
    );
    if r.sched_fifo {
        println!("measuring thread under SCHED_FIFO");
    }
    println!("hop deadline {:.0} us", h.hop_deadline_us);
    let row = |name: &str, p: &Percentiles| {
        println!(
            "  {name:<18} p50 {:>9.1} us  p99 {:>9.1} us  p99.9 {:>9.1} us  max {:>9.1} us  mean {:>8.1} us",
            p.p50_us, p.p99_us, p.p999_us, p.max_us, p.mean_us
        )
    };
    row("hop compute", &h.compute);
    row("deadline latency", &h.deadline_latency);
    println!(
        "  deadline misses {}  real-time factor {:.5} ({:.0}x faster than real time)",
        h.deadline_misses,
        h.real_time_factor,
        1.0 / h.real_time_factor
    );
    match (h.bytes_allocated_per_hop, h.allocations_total) {
        (Some(bytes), Some(count)) => {
            println!("  bytes allocated per hop {bytes:.3} ({count} allocations in total)")
        }
        _ => println!("  {NOT_COUNTED}"),
    }
    println!(
        "  feature frames {}, network outputs {}, decisions {}",
        h.feature_frames, h.network_outputs, h.decisions
    );
    if let Some(line) = &r.confirm {
        println!("  {line}");
        println!("  decisions turned down by the check {}", h.rejected);
        match &h.checked_compute {
            Some(p) => row("hops with a check", p),
            None => println!(
                "  no hop ran a check (no decision: try --audio assets/sample_keywords.wav)"
            ),
        }
    }
    for f in [&r.depth_frame, &r.control_tick] {
        println!(
            "{} against {:.0} us (as fast as possible):",
            f.what, f.deadline_us
        );
        row(&format!("{} items", f.items), &f.compute);
        match f.bytes_allocated_per_item {
            Some(bytes) => println!(
                "  deadline misses {}  bytes allocated per item {bytes:.3}",
                f.deadline_misses
            ),
            None => println!(
                "  deadline misses {}  bytes allocated per item not counted (--features alloc-count)",
                f.deadline_misses
            ),
        }
    }
}
