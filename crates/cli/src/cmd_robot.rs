//! `sepstream robot --sim`: the simulated differential-drive robot with depth perception and
//! keyword commands, in deterministic simulated time or in real time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use sepstream_audio::mic::MicOptions;
use sepstream_audio::read_audio;
use sepstream_pipeline::{
    start_actuation, start_listen, AudioInput, Detection, KwsModel, StageError,
};
use sepstream_train::evaluate;
use sepstream_vision::perception::DepthPerception;
use sepstream_vision::robot::CommandMsg;
use sepstream_vision::rt::{run_realtime, scripted_feed, CommandFeed, RtConfig};
use sepstream_vision::sim::{
    parse_command_script, pose_facing_obstacle, run_sim, ScheduledCommand, SimConfig, SimLog,
};
use sepstream_vision::RobotCommand;
use sepstream_vision::{
    ControllerConfig, DepthNoise, DiffDrive, SimDepthCamera, World, WorldParams,
};

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

/// Keyword events of a WAV file as robot commands: streaming features (sepstream-audio), the
/// keyword network stepped frame by frame (sepstream-nn), the keyword detector; each command
/// arrives at the time its event fired (`end`), i.e. with the model's real detection latency.
fn wav_commands(wav: &Path, kws_model: Option<&Path>) -> anyhow::Result<Vec<ScheduledCommand>> {
    let (net, name) = crate::model_arg::keyword_network(kws_model)?;
    let (fe, dc) = evaluate::configs(&net).with_context(|| format!("keyword model {name}"))?;
    let (samples, rate) = read_audio(wav).with_context(|| format!("reading {}", wav.display()))?;
    let events = evaluate::detect(&net, &fe, &dc, &samples, rate)?;
    let mut out = Vec::new();
    let mut heard = Vec::new();
    for ev in events {
        heard.push(format!("{}@{:.2}", ev.keyword, ev.end));
        if let Some(command) = RobotCommand::from_label(&ev.keyword) {
            out.push(ScheduledCommand {
                arrival: ev.end,
                command,
            });
        }
    }
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

/// Where the live keyword commands come from.
enum LiveSource {
    /// The microphone through capture -> inference -> actuation in this process.
    Mic {
        kws_model: Option<PathBuf>,
        device: Option<String>,
    },
    /// Keyword events from other processes over zenoh (only the actuation stage runs here).
    Subscribe {
        key: String,
        listen: Vec<String>,
        connect: Vec<String>,
    },
}

/// Keyword commands from the live pipeline: its actuation stage writes each robot command into
/// the control loop's latest-value slot (the loop reads it without waiting). The pipeline runs
/// until the loop ends.
fn live_feed(source: LiveSource) -> anyhow::Result<CommandFeed> {
    let mut config = crate::cmd_listen::default_pipeline_config()?;
    let (model, device, what) = match source {
        LiveSource::Mic { kws_model, device } => {
            let (net, name) = crate::model_arg::keyword_network(kws_model.as_deref())?;
            let model = KwsModel::from_network(net, false)
                .with_context(|| format!("keyword model {name}"))?;
            (Some(model), device, "--mic")
        }
        LiveSource::Subscribe {
            key,
            listen,
            connect,
        } => {
            let mut e = config.edge("events");
            e.zenoh_key = Some(key);
            config.edges.insert("events".into(), e);
            config.zenoh.listen.extend(listen);
            config.zenoh.connect.extend(connect);
            (None, None, "--subscribe")
        }
    };
    Ok(Box::new(move |mut slot, clock, stop| {
        let mut seq = 0u64;
        let act = move |d: &Detection| -> Result<(), StageError> {
            eprintln!(
                "heard {} ({:.2}) at {:.2} s",
                d.keyword,
                d.score,
                clock.now()
            );
            if let Some(command) = RobotCommand::from_label(&d.keyword) {
                seq += 1;
                slot.write(CommandMsg {
                    seq,
                    command,
                    arrival: clock.now(),
                });
            }
            Ok(())
        };
        let started = match model {
            Some(model) => {
                let input = AudioInput::Mic(MicOptions {
                    device,
                    ..MicOptions::default()
                });
                start_listen(model, input, config, act)
            }
            None => start_actuation(config, act),
        };
        let mut listener = match started {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: {what}: the keyword pipeline did not start: {:#}",
                    anyhow::Error::from(e)
                );
                return;
            }
        };
        for (edge, key) in &listener.subscribes {
            eprintln!("receiving {edge} on zenoh key {key:?}");
        }
        let capture = listener.capture.clone();
        let mut announced = false;
        while !stop.load(Ordering::Relaxed) {
            if listener.running.wait_for(Duration::from_millis(50)) {
                break;
            }
            if !announced && capture.started() {
                announced = true;
                if let Some((dev, rate, _)) = capture.device() {
                    eprintln!(
                        "capture started: device {dev:?}, {rate} Hz, at {:.2} s",
                        clock.now()
                    );
                }
            }
        }
        let (_, result) = listener.shutdown(Duration::from_secs(1));
        if let Err(e) = result {
            eprintln!(
                "error: {what}: keyword pipeline: {:#}",
                anyhow::Error::from(e)
            );
        }
    }))
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

    let drive = DiffDrive::default();
    let world = Arc::new(World::random(&WorldParams::default(), args.seed));
    let start = pose_facing_obstacle(&world, &drive, args.seed, 1.0, 3.0)
        .context("no collision-free start pose in this world; try another --seed")?;
    let camera = SimDepthCamera::default_robot(DepthNoise::default(), args.seed);
    let (depth_net, depth_name) = crate::model_arg::network(
        args.depth_model.as_deref(),
        sepstream_nn::bundled::DEFAULT_DEPTH_MODEL,
    )?;
    let perception = DepthPerception::new(Arc::new(depth_net), camera.intrinsics())
        .with_context(|| format!("depth model {depth_name}"))?;
    eprintln!(
        "world seed {}: {} obstacles; start ({:.2}, {:.2}) heading {:.0} deg; depth network `{}` (delay {} rows)",
        args.seed,
        world.obstacles.len(),
        start.translation.x,
        start.translation.y,
        start.rotation.angle().to_degrees(),
        depth_name,
        perception.streamer().delay()
    );

    let log: SimLog = if args.realtime {
        let cfg = RtConfig {
            control_hz: args.rate,
            camera_hz: args.camera_hz,
            perception_slowdown: args.slowdown,
            duration: args.duration,
            controller: ControllerConfig::default(),
            drive,
            fifo_priority: (args.fifo > 0).then_some(args.fifo),
            ..RtConfig::default()
        };
        let report = run_realtime(
            &cfg,
            world.clone(),
            start,
            camera,
            perception,
            Some(if args.mic {
                live_feed(LiveSource::Mic {
                    kws_model: args.kws_model.clone(),
                    device: args.device.clone(),
                })?
            } else if let Some(key) = &args.subscribe {
                live_feed(LiveSource::Subscribe {
                    key: key.clone(),
                    listen: args.zenoh_listen.clone(),
                    connect: args.zenoh_connect.clone(),
                })?
            } else {
                scripted_feed(commands)
            }),
        )?;
        if args.fifo > 0 && !report.fifo {
            eprintln!("note: SCHED_FIFO refused (needs root or CAP_SYS_NICE); control loop under normal scheduling");
        }
        report.log
    } else {
        let cfg = SimConfig {
            control_hz: args.rate,
            camera_hz: args.camera_hz,
            perception_latency: 1.0 / args.camera_hz,
            perception_slowdown: args.slowdown,
            duration: args.duration,
            controller: ControllerConfig::default(),
            drive,
        };
        let mut perception = perception;
        run_sim(
            &cfg,
            world.clone(),
            start,
            &commands,
            &camera,
            &mut perception,
        )?
    };

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
