//! Voice to robot: keyword events as the commands of the simulated robot's control loop, and the robot run they drive (`sepstream robot --sim`, `examples/robot_loop.rs`).
//!
//! - [`scheduled_commands`]: keyword events found in a recording, as commands replayed at the
//!   times they fired.
//! - [`live_feed`]: the live keyword pipeline beside the loop (microphone -> inference ->
//!   actuation in this process, or only the actuation stage fed over zenoh); its actuation stage
//!   writes each go / stop / left / right into the loop's latest-value slot as it is decided.
//! - [`RobotScene`]: the world of a seed, a start pose facing an obstacle, the depth camera and
//!   perception; [`RobotScene::run`] on the simulated clock or in real time.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sepstream_audio::mic::MicOptions;
use sepstream_nn::Network;
use sepstream_vision::nalgebra::Isometry2;
use sepstream_vision::robot::CommandMsg;
use sepstream_vision::rt::{run_realtime, scripted_feed, CommandFeed, RtConfig};
use sepstream_vision::sim::{pose_facing_obstacle, run_sim, ScheduledCommand, SimConfig, SimLog};
use sepstream_vision::{
    ControllerConfig, DepthNoise, DepthPerception, DiffDrive, RobotCommand, SimDepthCamera,
    VisionError, World, WorldParams,
};

use crate::{start_actuation, start_listen, AudioInput, Detection, KwsModel, PipelineConfig};
use crate::{PipelineError, StageError};

/// Errors of setting up or running the voice-commanded robot.
#[derive(Debug, thiserror::Error)]
pub enum VoiceRobotError {
    /// The world of this seed has no collision-free start pose facing an obstacle.
    #[error("no collision-free start pose in the world of seed {seed}; try another seed")]
    NoStartPose {
        /// The world's seed.
        seed: u64,
    },
    /// The depth network does not fit the camera or the perception's spec tables.
    #[error("depth model {name}")]
    DepthModel {
        /// The network's name.
        name: String,
        /// Why.
        #[source]
        source: VisionError,
    },
    /// Live commands arrive on the wall clock; the simulated clock cannot wait for them.
    #[error("live commands need the real-time clock")]
    LiveNeedsRealtime,
    /// The control loop failed.
    #[error("robot run")]
    Run(#[source] VisionError),
}

/// Robot commands from keyword events found offline, `(keyword, time in seconds)`: each keyword
/// that names a command (go, stop, left, right) arrives at its event's time; others are dropped.
pub fn scheduled_commands<'a>(
    events: impl IntoIterator<Item = (&'a str, f64)>,
) -> Vec<ScheduledCommand> {
    events
        .into_iter()
        .filter_map(|(keyword, arrival)| {
            RobotCommand::from_label(keyword).map(|command| ScheduledCommand { arrival, command })
        })
        .collect()
}

/// Where live keyword commands come from.
pub enum LiveCommands {
    /// The microphone through capture -> inference -> actuation in this process.
    Mic {
        /// The keyword model (boxed: it is much larger than the other variant).
        model: Box<KwsModel>,
        /// Input device name; `None` = the default input.
        device: Option<String>,
    },
    /// Keyword events from other processes over zenoh: only the actuation stage runs here.
    Subscribe {
        /// Key expression of the events.
        key: String,
        /// Endpoints to listen on.
        listen: Vec<String>,
        /// Endpoints to connect to.
        connect: Vec<String>,
    },
}

/// What a live feed reports while it runs, for the caller to show; times are the loop's clock.
#[derive(Debug)]
pub enum FeedEvent<'a> {
    /// A keyword was decided (a command or not).
    Heard {
        /// The detection.
        detection: &'a Detection,
        /// When it reached the actuation stage, seconds.
        at: f64,
    },
    /// This process receives an edge over zenoh.
    Receiving {
        /// The edge.
        edge: &'a str,
        /// Its key expression.
        key: &'a str,
    },
    /// The capture device opened and its stream started.
    CaptureStarted {
        /// Device name.
        device: &'a str,
        /// Its sample rate.
        rate: u32,
        /// When, seconds.
        at: f64,
    },
    /// The keyword pipeline did not start; the loop runs without live commands.
    StartFailed(PipelineError),
    /// The keyword pipeline stopped with an error.
    Failed(PipelineError),
}

/// Keyword commands from the live pipeline (started from `config`, `sepstream listen`'s
/// settings): its actuation stage writes each robot command into the control loop's
/// latest-value slot, which the loop reads without waiting. The pipeline runs until the loop
/// ends; `report` gets each [`FeedEvent`] as it happens (from the actuation stage's thread for
/// [`FeedEvent::Heard`], the feed's thread otherwise).
pub fn live_feed<R>(source: LiveCommands, mut config: PipelineConfig, report: R) -> CommandFeed
where
    R: FnMut(FeedEvent<'_>) + Send + 'static,
{
    let (model, device) = match source {
        LiveCommands::Mic { model, device } => (Some(*model), device),
        LiveCommands::Subscribe {
            key,
            listen,
            connect,
        } => {
            let mut e = config.edge("events");
            e.zenoh_key = Some(key);
            config.edges.insert("events".into(), e);
            config.zenoh.listen.extend(listen);
            config.zenoh.connect.extend(connect);
            (None, None)
        }
    };
    let report = Arc::new(Mutex::new(report));
    let emit = move |event: FeedEvent<'_>| {
        let mut r = report.lock().unwrap_or_else(PoisonError::into_inner);
        (*r)(event)
    };
    Box::new(move |mut slot, clock, stop| {
        let mut seq = 0u64;
        let heard = emit.clone();
        let act = move |d: &Detection| -> Result<(), StageError> {
            let at = clock.now();
            heard(FeedEvent::Heard { detection: d, at });
            if let Some(command) = RobotCommand::from_label(&d.keyword) {
                seq += 1;
                slot.write(CommandMsg {
                    seq,
                    command,
                    arrival: at,
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
                emit(FeedEvent::StartFailed(e));
                return;
            }
        };
        for (edge, key) in &listener.subscribes {
            emit(FeedEvent::Receiving { edge, key });
        }
        let capture = listener.capture.clone();
        let mut announced = false;
        while !stop.load(Ordering::Relaxed) {
            if listener.running.wait_for(Duration::from_millis(50)) {
                break;
            }
            if !announced && capture.started() {
                announced = true;
                if let Some((device, rate, _)) = capture.device() {
                    emit(FeedEvent::CaptureStarted {
                        device,
                        rate: *rate,
                        at: clock.now(),
                    });
                }
            }
        }
        let (_, result) = listener.shutdown(Duration::from_secs(1));
        if let Err(e) = result {
            emit(FeedEvent::Failed(e));
        }
    })
}

/// Where a run's commands come from.
pub enum RobotCommands {
    /// Commands at fixed times (a script, or keyword events of a recording).
    Scheduled(Vec<ScheduledCommand>),
    /// A feed on its own thread (e.g. [`live_feed`]); real time only.
    Live(CommandFeed),
}

/// How the robot runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RobotRun {
    /// Control loop rate (Hz).
    pub control_hz: f64,
    /// Camera frame rate (Hz).
    pub camera_hz: f64,
    /// Perception slowed down by this factor (frames and their results this many times later).
    pub perception_slowdown: f64,
    /// Run length (s).
    pub duration: f64,
    /// Threads on the wall clock instead of the deterministic simulated clock.
    pub realtime: bool,
    /// Real time: the control loop under SCHED_FIFO at this priority when the system allows it.
    pub fifo_priority: Option<i32>,
}

impl Default for RobotRun {
    fn default() -> Self {
        Self {
            control_hz: 200.0,
            camera_hz: 30.0,
            perception_slowdown: 1.0,
            duration: 20.0,
            realtime: false,
            fifo_priority: None,
        }
    }
}

/// What a run logged.
pub struct RobotOutcome {
    /// Ticks, commands applied, collisions.
    pub log: SimLog,
    /// Real time with a FIFO priority asked for: whether the loop got SCHED_FIFO.
    pub fifo: Option<bool>,
}

/// The simulated robot in the world of a seed: a start pose facing an obstacle 1 to 3 m ahead,
/// the depth camera on the robot and the perception network reading its frames.
pub struct RobotScene {
    /// The world's seed (also of the start pose and the sensor noise).
    pub seed: u64,
    /// Floor, walls, boxes.
    pub world: Arc<World>,
    /// The robot's start pose.
    pub start: Isometry2<f64>,
    /// The robot.
    pub drive: DiffDrive,
    /// The depth camera.
    pub camera: SimDepthCamera,
    /// The depth perception network.
    pub perception: DepthPerception,
}

impl RobotScene {
    /// The scene of `seed` with `depth` as the perception network.
    pub fn new(seed: u64, depth: Arc<Network>) -> Result<Self, VoiceRobotError> {
        let drive = DiffDrive::default();
        let world = Arc::new(World::random(&WorldParams::default(), seed));
        let start = pose_facing_obstacle(&world, &drive, seed, 1.0, 3.0)
            .ok_or(VoiceRobotError::NoStartPose { seed })?;
        let camera = SimDepthCamera::default_robot(DepthNoise::default(), seed);
        let name = depth.spec().name.clone();
        let perception = DepthPerception::new(depth, camera.intrinsics())
            .map_err(|source| VoiceRobotError::DepthModel { name, source })?;
        Ok(Self {
            seed,
            world,
            start,
            drive,
            camera,
            perception,
        })
    }

    /// Runs the robot with `commands`, on the simulated clock or in real time.
    pub fn run(
        self,
        run: &RobotRun,
        commands: RobotCommands,
    ) -> Result<RobotOutcome, VoiceRobotError> {
        if run.realtime {
            let cfg = RtConfig {
                control_hz: run.control_hz,
                camera_hz: run.camera_hz,
                perception_slowdown: run.perception_slowdown,
                duration: run.duration,
                controller: ControllerConfig::default(),
                drive: self.drive,
                fifo_priority: run.fifo_priority,
                ..RtConfig::default()
            };
            let feed = match commands {
                RobotCommands::Scheduled(c) => scripted_feed(c),
                RobotCommands::Live(feed) => feed,
            };
            let report = run_realtime(
                &cfg,
                self.world,
                self.start,
                self.camera,
                self.perception,
                Some(feed),
            )
            .map_err(VoiceRobotError::Run)?;
            Ok(RobotOutcome {
                log: report.log,
                fifo: run.fifo_priority.map(|_| report.fifo),
            })
        } else {
            let RobotCommands::Scheduled(commands) = commands else {
                return Err(VoiceRobotError::LiveNeedsRealtime);
            };
            let cfg = SimConfig {
                control_hz: run.control_hz,
                camera_hz: run.camera_hz,
                perception_latency: 1.0 / run.camera_hz,
                perception_slowdown: run.perception_slowdown,
                duration: run.duration,
                controller: ControllerConfig::default(),
                drive: self.drive,
            };
            let mut perception = self.perception;
            let log = run_sim(
                &cfg,
                self.world,
                self.start,
                &commands,
                &self.camera,
                &mut perception,
            )
            .map_err(VoiceRobotError::Run)?;
            Ok(RobotOutcome { log, fifo: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_that_name_commands_become_scheduled_commands() {
        let c = scheduled_commands([("yes", 0.5), ("go", 1.25), ("left", 2.0), ("stop", 3.0)]);
        let got: Vec<_> = c.iter().map(|c| (c.command.name(), c.arrival)).collect();
        assert_eq!(got, [("go", 1.25), ("left", 2.0), ("stop", 3.0)]);
    }
}
