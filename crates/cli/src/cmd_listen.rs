//! `sepstream listen`: live keyword spotting from the microphone (capture, inference and actuation
//! threads); events on stdout as text or JSON lines, stats and status on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sepstream_audio::mic::MicOptions;
use sepstream_pipeline::{
    start_listen, stop_on_ctrl_c, AudioInput, KwsModel, PipelineConfig, PipelineReport, SimStep,
    SimulatedInput, StageError,
};

/// Options of `sepstream listen`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: a spec file (TOML, with its weights) or a bundled model's name (`sepstream
    /// models`); default: the bundled keyword model `kws`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Input device name (see `sepstream devices`); default: the system's default input.
    #[arg(long)]
    device: Option<String>,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
    /// Print per-stage latency p50/p99/max, drops and deadline misses every few seconds and at exit.
    #[arg(long)]
    stats: bool,
    /// Stop after this long (e.g. 10s, 500ms, 2m); default: run until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    /// Pipeline settings (edges, policies, deadlines); default: the shipped configs/pipeline.toml
    /// (compiled in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Live meter of the input level and the top posteriors on stderr.
    #[arg(long)]
    meter: bool,
    /// Run with random weights when the model's trained weights are missing (plumbing only).
    #[arg(long)]
    random_weights: bool,
    #[command(flatten)]
    confirm: crate::model_arg::ConfirmArgs,
    /// Testing: read a WAV file (or "silence") as if it were a microphone, in real time.
    #[arg(long, hide = true)]
    simulate: Option<String>,
    /// Testing: the simulated microphone fails (like a disconnect) after this long.
    #[arg(long, hide = true)]
    simulate_fail_after: Option<String>,
    /// Testing: STAGE:fail@N, STAGE:panic@N or STAGE:delay_us=N (repeatable).
    #[arg(long = "test-hook", hide = true)]
    test_hooks: Vec<String>,
    #[command(flatten)]
    net: NetArgs,
}

/// Options that split the listen graph across processes (zenoh; needs the `zenoh` build feature).
#[derive(clap::Args, Clone, Default)]
pub struct NetArgs {
    /// Publish keyword events (JSON: model, keyword, score, times, sequence number) on this
    /// zenoh key expression, e.g. sepstream/events (sets edges.events.zenoh_key).
    #[arg(long, value_name = "KEY")]
    publish: Option<String>,
    /// Send or receive the audio blocks on this zenoh key expression, e.g. sepstream/audio (sets
    /// edges.audio.zenoh_key).
    #[arg(long, value_name = "KEY")]
    audio_key: Option<String>,
    /// The stages this process runs, comma-separated: capture, inference, actuation (sets
    /// [process] stages; default: all three).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    stages: Vec<String>,
    /// A zenoh endpoint to listen on, e.g. tcp/127.0.0.1:7447 (repeatable; adds to [zenoh] listen).
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_listen: Vec<String>,
    /// A zenoh endpoint to connect to: another process's listen endpoint or a router
    /// (repeatable; adds to [zenoh] connect).
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_connect: Vec<String>,
}

impl NetArgs {
    /// Applies the options to a pipeline configuration.
    pub fn apply(&self, config: &mut PipelineConfig) {
        let mut key = |edge: &str, k: &Option<String>| {
            if let Some(k) = k {
                let mut e = config.edge(edge);
                e.zenoh_key = Some(k.clone());
                config.edges.insert(edge.to_string(), e);
            }
        };
        key("events", &self.publish);
        key("audio", &self.audio_key);
        if !self.stages.is_empty() {
            config.process.stages = self.stages.clone();
        }
        config
            .zenoh
            .listen
            .extend(self.zenoh_listen.iter().cloned());
        config
            .zenoh
            .connect
            .extend(self.zenoh_connect.iter().cloned());
    }
}

/// Options of `sepstream serve-inference`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Model: a spec file (TOML, with its weights) or a bundled model's name; default: `kws`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Pipeline settings; default: the shipped configs/pipeline.toml (compiled in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The zenoh key the audio blocks arrive on (unless the config gives edges.audio.zenoh_key).
    #[arg(long, value_name = "KEY", default_value = "sepstream/audio")]
    audio_key: String,
    /// The zenoh key keyword events leave on (unless the config gives edges.events.zenoh_key).
    #[arg(long, value_name = "KEY", default_value = "sepstream/events")]
    publish: String,
    /// A zenoh endpoint to listen on (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_listen: Vec<String>,
    /// A zenoh endpoint to connect to (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_connect: Vec<String>,
    /// Print per-stage stats (latency, drops, network gaps) every few seconds and at exit.
    #[arg(long)]
    stats: bool,
    /// Stop after this long (e.g. 10s, 2m); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
}

/// `sepstream serve-inference`: the inference stage alone, audio in and events out over zenoh.
pub fn run_serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &a.config {
        Some(p) => PipelineConfig::load(p)?,
        None => default_pipeline_config()?,
    };
    for (edge, key) in [("audio", &a.audio_key), ("events", &a.publish)] {
        let mut e = config.edge(edge);
        if e.zenoh_key.is_none() {
            e.zenoh_key = Some(key.clone());
        }
        config.edges.insert(edge.into(), e);
    }
    let net = NetArgs {
        stages: vec!["inference".into()],
        zenoh_listen: a.zenoh_listen,
        zenoh_connect: a.zenoh_connect,
        ..NetArgs::default()
    };
    net.apply(&mut config);
    run_with(
        Args {
            model: a.model,
            device: None,
            json: false,
            stats: a.stats,
            duration: a.duration,
            config: None,
            meter: false,
            random_weights: false,
            simulate: None,
            simulate_fail_after: None,
            test_hooks: Vec::new(),
            net: NetArgs::default(),
            confirm: Default::default(),
        },
        config,
    )
}

/// Parses "10s", "250ms", "2m", "1.5" (seconds).
fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad duration {s:?} (expected e.g. 10s, 500ms, 2m)"))?;
    if !(v.is_finite() && v >= 0.0) {
        bail!("bad duration {s:?}");
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// The shipped configs/pipeline.toml, compiled in (the same from any folder).
pub fn default_pipeline_config() -> anyhow::Result<PipelineConfig> {
    Ok(PipelineConfig::shipped())
}

fn simulated_input(what: &str, fail_after: Option<Duration>) -> anyhow::Result<SimulatedInput> {
    let mut sim = if what == "silence" {
        SimulatedInput::silence(48_000)
    } else {
        let (samples, rate) = sepstream_audio::read_audio(Path::new(what))
            .with_context(|| format!("--simulate {what}"))?;
        let mut s = SimulatedInput::from_samples(samples, rate, 0.5, 1.5);
        s.name = format!("simulated:{what}");
        s
    };
    if let Some(after) = fail_after {
        let period = sim.period_frames as f64 / sim.rate as f64;
        let limit = (after.as_secs_f64() / period).ceil() as u64;
        let mut n = 0u64;
        let mut inner = sim.generator;
        sim.generator = Box::new(move |buf: &mut [f32]| {
            n += 1;
            if n > limit {
                SimStep::Fail("simulated device disconnected".into())
            } else {
                inner(buf)
            }
        });
    }
    Ok(sim)
}

fn print_stats(report: &PipelineReport, label: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "stats ({label}):");
    for s in &report.stages {
        let _ = writeln!(err, "  {s}");
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(p) => PipelineConfig::load(p)?,
        None => default_pipeline_config()?,
    };
    args.net.apply(&mut config);
    run_with(args, config)
}

fn run_with(args: Args, config: PipelineConfig) -> anyhow::Result<ExitCode> {
    let mut model = match &args.model {
        Some(p) if p.is_file() => KwsModel::load(p, args.random_weights)?,
        other => crate::model_arg::keyword_model(other.as_deref())?.0,
    };
    args.confirm.apply(&mut model)?;
    if let Some(line) = crate::model_arg::describe_confirm(&model) {
        eprintln!("{line}");
    }
    if model.random {
        eprintln!(
            "warning: {}: trained weights not found; running with RANDOM weights (detections are meaningless)",
            args.model.as_deref().unwrap_or(Path::new("?")).display()
        );
    }
    let checked = model.confirm.is_some();
    let run_for = args.duration.as_deref().map(parse_duration).transpose()?;
    let fail_after = args
        .simulate_fail_after
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    let input = match &args.simulate {
        Some(what) => AudioInput::Simulated(simulated_input(what, fail_after)?),
        None => AudioInput::Mic(MicOptions {
            device: args.device.clone(),
            ..MicOptions::default()
        }),
    };
    let stats_every = Duration::from_secs_f64(config.stats.interval_s);
    let json = args.json;
    let meter_on = args.meter;
    let act = move |d: &sepstream_pipeline::Detection| -> Result<(), StageError> {
        let mut out = std::io::stdout().lock();
        let r = if json {
            writeln!(out, "{}", d.to_json_line())
        } else {
            if meter_on {
                eprint!("\r\x1b[2K");
            }
            writeln!(out, "{d}")
        };
        r.and_then(|_| out.flush())
            .map_err(|e| StageError::new(format!("writing an event to stdout: {e}")))
    };

    let mut l = start_listen(model.clone(), input, config, act)?;
    for hook in &args.test_hooks {
        let (stage, what) = hook
            .split_once(':')
            .with_context(|| format!("--test-hook {hook:?}: expected STAGE:ACTION"))?;
        let h = l
            .running
            .hooks(stage)
            .with_context(|| format!("--test-hook {hook:?}: no stage {stage:?}"))?;
        if let Some(n) = what.strip_prefix("fail@") {
            h.fail_at_item.store(n.parse()?, Ordering::Relaxed);
        } else if let Some(n) = what.strip_prefix("panic@") {
            h.panic_at_item.store(n.parse()?, Ordering::Relaxed);
        } else if let Some(n) = what.strip_prefix("delay_us=") {
            h.delay_us.store(n.parse()?, Ordering::Relaxed);
        } else {
            bail!("--test-hook {hook:?}: unknown action {what:?}");
        }
    }
    stop_on_ctrl_c(l.running.stop_handle())?;
    for (edge, key) in &l.subscribes {
        eprintln!("receiving {edge} on zenoh key {key:?}");
    }
    for (edge, key) in &l.publishes {
        eprintln!("sending {edge} on zenoh key {key:?}");
    }
    let runs_capture = l.stages.contains(&"capture");

    let t0 = Instant::now();
    let mut last_stats = Instant::now();
    let mut announced = false;
    let mut ended = false;
    while !ended {
        ended = l.running.wait_for(Duration::from_millis(50));
        if !announced && l.capture.started() {
            announced = true;
            if let Some((dev, rate, ch)) = l.capture.device() {
                eprintln!(
                    "capture started: device {dev:?}, {rate} Hz, {ch} ch -> model {:?} at {} Hz",
                    model.net.spec().name,
                    model.frontend.sample_rate
                );
            }
        }
        if l.running.stop_handle().is_stop_requested() {
            break;
        }
        if run_for.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
        if args.stats && last_stats.elapsed() >= stats_every {
            last_stats = Instant::now();
            print_stats(
                &l.running.snapshot(),
                &format!("{:.1} s", t0.elapsed().as_secs_f64()),
            );
        }
        if args.meter && (announced || !runs_capture) {
            let (level, top) = l.meter.read();
            let bar_len = ((level.clamp(0.0, 1.0)) * 30.0).round() as usize;
            let mut line = format!("\r\x1b[2Klevel [{:<30}] ", "#".repeat(bar_len));
            for (i, p) in top {
                let name = model.labels.get(i).map(String::as_str).unwrap_or("?");
                line.push_str(&format!(" {name} {p:.2}"));
            }
            eprint!("{line}");
        }
    }
    if args.meter {
        eprintln!();
    }
    let capture = l.capture.clone();
    let meter = l.meter.clone();
    let (report, result) = l.shutdown(Duration::from_secs(1));
    let overruns = capture.overruns();
    if args.stats {
        print_stats(
            &report,
            &format!("final, {:.1} s", t0.elapsed().as_secs_f64()),
        );
    }
    if runs_capture {
        eprintln!(
            "capture overruns: {overruns} samples; device reopened after a stall: {} times",
            capture.reopens(),
        );
    }
    if report.stage("inference").is_some() {
        eprintln!(
            "inference resets after dropped audio: {}",
            meter.resets.load(Ordering::Relaxed)
        );
        if checked {
            eprintln!(
                "keyword decisions turned down by the second-stage check: {}",
                meter.rejected.load(Ordering::Relaxed)
            );
        }
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
