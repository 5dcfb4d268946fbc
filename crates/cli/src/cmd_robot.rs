//! `sepstream robot --sim`: the simulated differential-drive robot with depth perception and
//! keyword commands, in deterministic simulated time or in real time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use sepstream_audio::AudioReader;
use sepstream_kws::{Event, Spotter};
use sepstream_pipeline::voice_robot::{
    self, scheduled_commands, FeedEvent, LiveCommands, RobotCommands, RobotRun, RobotScene,
    VoiceRobotError,
};
use sepstream_vision::rt::CommandFeed;
use sepstream_vision::sim::{parse_command_script, ScheduledCommand};

/// Options of `sepstream robot`.
#[derive(clap::Args)]
pub struct Args {
    /// Drive the simulated robot (the only robot there is).
    #[arg(long)]
    sim: bool,
    /// Run in real time on threads (perception and commands on their own threads, the control
    /// loop at a fixed rate); default is the deterministic simulated clock.
    #[arg(long)]
    realtime: bool,
    /// Seed of the world, start pose and sensor noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run length in seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Control loop rate (Hz), 100 to 1000.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Camera frame rate (Hz).
    #[arg(long, default_value_t = 30.0)]
    camera_hz: f64,
    /// Slow perception down by this factor (frames and their results come this many times later).
    #[arg(long, default_value_t = 1.0)]
    slowdown: f64,
    /// Commands as TIME:COMMAND pairs, e.g. "0.5:go,6:left,9:go,15:stop".
    #[arg(long)]
    commands: Option<String>,
    /// Keyword commands from a WAV file: the keyword model's events (go, stop, left, right) at
    /// the times they fire in the file, replayed on the loop's clock.
    #[arg(long)]
    wav: Option<PathBuf>,
    /// The keyword model used for --wav and --mic: a spec file (with [frontend] and
    /// [decision]) or a bundled model's name; default: the bundled `kws`.
    #[arg(long)]
    kws_model: Option<PathBuf>,
    /// Keyword commands from the microphone: the live keyword pipeline (capture, inference,
    /// actuation threads, as in `sepstream listen`) hands each go/stop/left/right event to the
    /// control loop as it is decided (needs --realtime).
    #[arg(long)]
    mic: bool,
    /// With --realtime: SCHED_FIFO priority of the control loop thread (1-99; 0 = normal
    /// scheduling). Taken when the system allows it (root or CAP_SYS_NICE), else ignored with a note.
    #[arg(long, default_value_t = 50)]
    fifo: i32,
    /// Keyword commands from the network: keyword events (JSON, as `sepstream listen --publish
    /// KEY` or `serve-inference` send them) on this zenoh key expression, each go/stop/left/right
    /// handed to the control loop as it arrives (needs --realtime and the `zenoh` build feature).
    #[arg(long, value_name = "KEY")]
    subscribe: Option<String>,
    /// With --subscribe: a zenoh endpoint to listen on (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_listen: Vec<String>,
    /// With --subscribe: a zenoh endpoint to connect to, e.g. the inference process's (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_connect: Vec<String>,
    /// Input device for --mic (a name as `sepstream devices` lists it; default: the default input).
    #[arg(long)]
    device: Option<String>,
    /// The depth perception network: a spec file or a bundled model's name; default: the
    /// bundled `depth_sectors`.
    #[arg(long)]
    depth_model: Option<PathBuf>,
    /// Write a trajectory plot (PNG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Plot without text (if no system font is available).
    #[arg(long)]
    plot_no_text: bool,
    /// Print every applied command and the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Keyword events of a WAV file as robot commands: the keyword model's [`Spotter`] (streaming
/// features, the network stepped frame by frame, the keyword detector) over the file block by
/// block; each command arrives at the time its event fired (`end`), i.e. with the model's real
/// detection latency.
fn wav_commands(wav: &Path, kws_model: Option<&Path>) -> anyhow::Result<Vec<ScheduledCommand>> {
    let (model, name) = crate::model_arg::keyword_model(kws_model)?;
    let mut reader =
        AudioReader::open(wav).with_context(|| format!("reading {}", wav.display()))?;
    let mut spotter = Spotter::new(&model, reader.info().sample_rate)
        .with_context(|| format!("keyword model {name}"))?;
    let mut events = Vec::new();
    spotter
        .push_reader(&mut reader, |hop| {
            if let Some(hit) = &hop.hit {
                events.push(Event::from_hit(hit, &model.labels));
            }
        })
        .with_context(|| format!("reading {}", wav.display()))?;
    let heard: Vec<String> = events
        .iter()
        .map(|ev| format!("{}@{:.2}", ev.keyword, ev.end))
        .collect();
    let out = scheduled_commands(events.iter().map(|ev| (ev.keyword.as_str(), ev.end)));
    eprintln!(
        "{}: keywords heard {}; robot commands {}",
        wav.display(),
        if heard.is_empty() {
            "none".to_string()
        } else {
            heard.join(" ")
        },
        out.len()
    );
    Ok(out)
}

/// Keyword commands from the live pipeline (`sepstream listen`'s settings), its messages on
/// stderr; `what` is the option that asked for it.
fn live_feed(source: LiveCommands, what: &'static str) -> anyhow::Result<CommandFeed> {
    let config = crate::cmd_listen::default_pipeline_config()?;
    Ok(voice_robot::live_feed(
        source,
        config,
        move |event| match event {
            FeedEvent::Heard { detection, at } => eprintln!(
                "heard {} ({:.2}) at {at:.2} s",
                detection.keyword, detection.score
            ),
            FeedEvent::Receiving { edge, key } => {
                eprintln!("receiving {edge} on zenoh key {key:?}")
            }
            FeedEvent::CaptureStarted { device, rate, at } => {
                eprintln!("capture started: device {device:?}, {rate} Hz, at {at:.2} s")
            }
            FeedEvent::StartFailed(e) => eprintln!(
                "error: {what}: the keyword pipeline did not start: {:#}",
                anyhow::Error::from(e)
            ),
            FeedEvent::Failed(e) => eprintln!(
                "error: {what}: keyword pipeline: {:#}",
                anyhow::Error::from(e)
            ),
        },
    ))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.sim {
        bail!("only the simulated robot exists: pass --sim");
    }
    if !(1.0..=10_000.0).contains(&args.rate) {
        bail!(
            "--rate {} Hz is out of range (1..=10000; 100..=1000 intended)",
            args.rate
        );
    }
    if !(args.duration > 0.0 && args.camera_hz > 0.0 && args.slowdown >= 1.0) {
        bail!("--duration and --camera-hz must be positive and --slowdown at least 1");
    }
    let live = args.mic || args.subscribe.is_some();
    let commands: Vec<ScheduledCommand> = match (&args.commands, &args.wav, live) {
        (Some(s), None, false) => parse_command_script(s)?,
        (None, Some(wav), false) => wav_commands(wav, args.kws_model.as_deref())?,
        (None, None, true) if args.mic && args.subscribe.is_some() => {
            bail!("give one of --mic and --subscribe")
        }
        (None, None, true) if !args.realtime => {
            bail!("--mic and --subscribe need --realtime: live commands run on the wall clock")
        }
        (None, None, true) => Vec::new(),
        (None, None, false) => parse_command_script("0.5:go")?,
        _ => bail!("give at most one of --commands, --wav, --mic, --subscribe"),
    };

    let (depth_net, depth_name) = crate::model_arg::network(
        args.depth_model.as_deref(),
        sepstream_nn::bundled::DEFAULT_DEPTH_MODEL,
    )?;
    let scene = RobotScene::new(args.seed, Arc::new(depth_net)).map_err(|e| match e {
        VoiceRobotError::NoStartPose { .. } => {
            anyhow::anyhow!("no collision-free start pose in this world; try another --seed")
        }
        VoiceRobotError::DepthModel { source, .. } => {
            anyhow::Error::from(source).context(format!("depth model {depth_name}"))
        }
        e => e.into(),
    })?;
    let world = scene.world.clone();
    eprintln!(
        "world seed {}: {} obstacles; start ({:.2}, {:.2}) heading {:.0} deg; depth network `{}` (delay {} rows)",
        args.seed,
        world.obstacles.len(),
        scene.start.translation.x,
        scene.start.translation.y,
        scene.start.rotation.angle().to_degrees(),
        depth_name,
        scene.perception.streamer().delay()
    );

    let run = RobotRun {
        control_hz: args.rate,
        camera_hz: args.camera_hz,
        perception_slowdown: args.slowdown,
        duration: args.duration,
        realtime: args.realtime,
        fifo_priority: (args.fifo > 0).then_some(args.fifo),
    };
    let commands = if args.mic {
        let (model, _) = crate::model_arg::keyword_model(args.kws_model.as_deref())?;
        let source = LiveCommands::Mic {
            model: Box::new(model),
            device: args.device.clone(),
        };
        RobotCommands::Live(live_feed(source, "--mic")?)
    } else if let Some(key) = &args.subscribe {
        let source = LiveCommands::Subscribe {
            key: key.clone(),
            listen: args.zenoh_listen.clone(),
            connect: args.zenoh_connect.clone(),
        };
        RobotCommands::Live(live_feed(source, "--subscribe")?)
    } else {
        RobotCommands::Scheduled(commands)
    };
    let outcome = scene.run(&run, commands)?;
    if outcome.fifo == Some(false) {
        eprintln!("note: SCHED_FIFO refused (needs root or CAP_SYS_NICE); control loop under normal scheduling");
    }
    let log = outcome.log;

    let summary = log.summary();
    if args.json {
        let marks: Vec<_> = log
            .marks
            .iter()
            .map(|m| serde_json::json!({"command": m.command.name(), "arrival": m.arrival, "applied": m.t, "x": m.x, "y": m.y}))
            .collect();
        let out = serde_json::json!({
            "mode": if args.realtime { "realtime" } else { "simulated-clock" },
            "seed": args.seed,
            "ticks": summary.ticks, "period_s": summary.period, "missed_ticks": summary.missed_ticks,
            "overruns": summary.overruns, "tick_p50_s": summary.tick_p50, "tick_p99_s": summary.tick_p99,
            "tick_max_s": summary.tick_max, "lateness_max_s": summary.lateness_max,
            "frames": summary.frames, "stale_ticks": summary.stale_ticks,
            "collisions": summary.collisions, "min_gap_m": summary.min_gap, "distance_m": summary.distance,
            "commands": marks,
        });
        println!("{out}");
    } else {
        for m in &log.marks {
            println!(
                "{:>8.3} s  {:<5}  arrived {:.3} s, applied after {:.3} ms at ({:.2}, {:.2})",
                m.t,
                m.command.name(),
                m.arrival,
                (m.t - m.arrival) * 1e3,
                m.x,
                m.y
            );
        }
        println!("{summary}");
    }
    if let Some(p) = &args.plot {
        let title = format!(
            "seed {} - {} s at {:.0} Hz{}",
            args.seed,
            args.duration,
            args.rate,
            if args.realtime { " (real time)" } else { "" }
        );
        sepstream_vision::plot::plot_run(&world, &log, &title, p, (900, 700), !args.plot_no_text)
            .with_context(|| format!("writing plot {}", p.display()))?;
        eprintln!("plot written to {}", p.display());
    }
    Ok(if summary.collisions > 0 || summary.missed_ticks > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
