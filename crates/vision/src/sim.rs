//! Deterministic simulation mode: one thread, a simulated clock advanced by the control period
//! each tick, seeded world and sensor noise. Perception runs for real (row-streamed network) on
//! each simulated camera frame; its result is handed to the loop through the same latest-value
//! slot as in real time, but only once its simulated latency has passed. Same seed, same run.

use std::collections::VecDeque;
use std::sync::Arc;

use nalgebra::{Isometry2, Point2, Vector2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::camera::{FrameRays, SimDepthCamera};
use crate::control::{CommandMark, ControlLoop, TickRecord};
use crate::latest::latest;
use crate::perception::{DepthPerception, SectorReading};
use crate::robot::{CommandMsg, Controller, ControllerConfig, DiffDrive, RobotCommand};
use crate::{DepthFrame, VisionError, World};

/// A command and the (simulated) time it reaches the control loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduledCommand {
    /// Arrival time (s).
    pub arrival: f64,
    /// The command.
    pub command: RobotCommand,
}

/// Parses `"0.5:go,3:left,6.2:stop"` (time in seconds, then a command name).
pub fn parse_command_script(s: &str) -> Result<Vec<ScheduledCommand>, VisionError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let bad = || VisionError::CommandScript {
            item: item.to_string(),
        };
        let (t, c) = item.split_once(':').ok_or_else(bad)?;
        let arrival: f64 = t.trim().parse().map_err(|_| bad())?;
        let command = RobotCommand::from_label(c.trim()).ok_or_else(bad)?;
        if !arrival.is_finite() || arrival < 0.0 {
            return Err(bad());
        }
        out.push(ScheduledCommand { arrival, command });
    }
    out.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
    Ok(out)
}

/// Settings of a simulated-clock run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// Control loop rate (Hz), 100..=1000 typical.
    pub control_hz: f64,
    /// Camera frame rate (Hz).
    pub camera_hz: f64,
    /// Perception latency: capture to result (s).
    pub perception_latency: f64,
    /// Perception slowed by this factor: frames every `factor / camera_hz`, latency times `factor`.
    pub perception_slowdown: f64,
    /// Run length (s).
    pub duration: f64,
    /// Controller settings.
    pub controller: ControllerConfig,
    /// Robot.
    pub drive: DiffDrive,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            control_hz: 200.0,
            camera_hz: 30.0,
            perception_latency: 1.0 / 30.0,
            perception_slowdown: 1.0,
            duration: 10.0,
            controller: ControllerConfig::default(),
            drive: DiffDrive::default(),
        }
    }
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct SimLog {
    /// Every tick.
    pub ticks: Vec<TickRecord>,
    /// Commands as the controller applied them.
    pub marks: Vec<CommandMark>,
    /// Ticks whose motion was blocked by contact.
    pub collisions: u64,
    /// Smallest footprint gap (m).
    pub min_gap: f64,
    /// Perception frames processed.
    pub frames: u64,
    /// Control period (s).
    pub dt: f64,
    /// Ticks whose perception reading was older than `stale_after`.
    pub stale_ticks: u64,
    /// Ticks the loop should have run and did (always all of them in simulated time).
    pub missed_ticks: u64,
}

impl SimLog {
    /// Summary figures of the run.
    pub fn summary(&self) -> RunSummary {
        let mut d: Vec<f64> = self.ticks.iter().map(|t| t.duration).collect();
        d.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if d.is_empty() {
                0.0
            } else {
                d[((d.len() - 1) as f64 * p).round() as usize]
            }
        };
        let dist = self
            .ticks
            .windows(2)
            .map(|w| {
                ((w[1].pose[0] - w[0].pose[0]).powi(2) + (w[1].pose[1] - w[0].pose[1]).powi(2))
                    .sqrt()
            })
            .sum();
        RunSummary {
            ticks: self.ticks.len() as u64,
            period: self.dt,
            missed_ticks: self.missed_ticks,
            overruns: d.iter().filter(|&&x| x > self.dt).count() as u64,
            tick_p50: q(0.5),
            tick_p99: q(0.99),
            tick_max: q(1.0),
            lateness_max: self.ticks.iter().map(|t| t.lateness).fold(0.0, f64::max),
            stale_ticks: self.stale_ticks,
            frames: self.frames,
            collisions: self.collisions,
            min_gap: self.min_gap,
            distance: dist,
            commands: self.marks.len(),
        }
    }
}

/// Summary figures of a run (tick durations are wall-clock, 0 in simulated-clock runs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunSummary {
    /// Ticks run.
    pub ticks: u64,
    /// Control period (s).
    pub period: f64,
    /// Deadline slots missed.
    pub missed_ticks: u64,
    /// Ticks whose work exceeded the period.
    pub overruns: u64,
    /// Median tick work (s).
    pub tick_p50: f64,
    /// 99th percentile tick work (s).
    pub tick_p99: f64,
    /// Longest tick work (s).
    pub tick_max: f64,
    /// Latest tick start after its deadline (s).
    pub lateness_max: f64,
    /// Ticks with stale perception.
    pub stale_ticks: u64,
    /// Perception frames.
    pub frames: u64,
    /// Ticks blocked by contact.
    pub collisions: u64,
    /// Smallest footprint gap (m).
    pub min_gap: f64,
    /// Path length (m).
    pub distance: f64,
    /// Commands applied.
    pub commands: usize,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "control: {} ticks at {:.0} Hz (period {:.3} ms), missed {}, overruns {}",
            self.ticks,
            1.0 / self.period,
            self.period * 1e3,
            self.missed_ticks,
            self.overruns
        )?;
        writeln!(
            f,
            "tick work: p50 {:.1} us, p99 {:.1} us, max {:.1} us ({:.2}% of the period); max start lateness {:.1} us",
            self.tick_p50 * 1e6,
            self.tick_p99 * 1e6,
            self.tick_max * 1e6,
            100.0 * self.tick_max / self.period,
            self.lateness_max * 1e6
        )?;
        writeln!(
            f,
            "perception: {} frames, {} ticks with a stale reading",
            self.frames, self.stale_ticks
        )?;
        write!(
            f,
            "robot: {:.2} m driven, {} commands applied, min gap to obstacles {:.3} m, collisions {}",
            self.distance, self.commands, self.min_gap, self.collisions
        )
    }
}

/// A collision-free start pose in `world` facing an obstacle between `min_d` and `max_d` ahead
/// (measured from the footprint), deterministic for `seed`; `None` if none found.
pub fn pose_facing_obstacle(
    world: &World,
    drive: &DiffDrive,
    seed: u64,
    min_d: f64,
    max_d: f64,
) -> Option<Isometry2<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED);
    let (lo, hi) = world.bounds;
    for _ in 0..10_000 {
        let p = Point2::new(
            rng.random_range(lo.x + 0.4..hi.x - 0.4),
            rng.random_range(lo.y + 0.4..hi.y - 0.4),
        );
        if world.clearance(&p) < drive.radius + 0.5 {
            continue;
        }
        let th = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
        // March straight ahead until the footprint touches something.
        let dir = Vector2::new(th.cos(), th.sin());
        let mut s = 0.0;
        while s < max_d + 0.1 {
            if world.clearance(&(p + dir * s)) < drive.radius {
                break;
            }
            s += 0.01;
        }
        if s >= min_d && s <= max_d {
            return Some(Isometry2::new(p.coords, th));
        }
    }
    None
}

/// Runs the robot in `world` from `start` with the given commands, in simulated time.
pub fn run_sim(
    cfg: &SimConfig,
    world: Arc<World>,
    start: Isometry2<f64>,
    commands: &[ScheduledCommand],
    camera: &SimDepthCamera,
    perception: &mut DepthPerception,
) -> Result<SimLog, VisionError> {
    let dt = 1.0 / cfg.control_hz;
    let n_ticks = (cfg.duration * cfg.control_hz).round() as usize;
    let (mut pw, pr) = latest(SectorReading::empty());
    let (mut cw, cr) = latest(CommandMsg::none());
    let mut cl = ControlLoop::new(
        Controller::new(cfg.controller, cfg.drive),
        cfg.drive,
        world.clone(),
        start,
        pr,
        cr,
        None,
        dt,
        n_ticks,
    );
    let frame_period = cfg.perception_slowdown / cfg.camera_hz;
    let latency = cfg.perception_latency * cfg.perception_slowdown;
    let mut next_capture = 0.0;
    let mut frames = 0u64;
    let mut pending: VecDeque<SectorReading> = VecDeque::new();
    let mut frame = DepthFrame::new(camera.intrinsics().width, camera.intrinsics().height, 1);
    let mut rays = FrameRays::default();
    let mut next_cmd = 0;
    let mut cmd_seq = 0;
    let mut stale_ticks = 0;
    for k in 0..n_ticks {
        let t = k as f64 * dt;
        // Camera: capture at this tick's pose; the result is ready `latency` later.
        if t + 1e-12 >= next_capture {
            frames += 1;
            camera.render_planned(&world, &cl.pose(), frames, &mut frame, &mut rays);
            let r = perception.process_frame(&frame, frames, t, t + latency)?;
            pending.push_back(r);
            next_capture += frame_period;
        }
        while pending.front().is_some_and(|r| r.ready_time <= t + 1e-12) {
            if let Some(r) = pending.pop_front() {
                pw.write(r);
            }
        }
        while next_cmd < commands.len() && commands[next_cmd].arrival <= t + 1e-12 {
            cmd_seq += 1;
            cw.write(CommandMsg {
                seq: cmd_seq,
                command: commands[next_cmd].command,
                arrival: commands[next_cmd].arrival,
            });
            next_cmd += 1;
        }
        let d = cl.tick(t);
        if d.perception_age > cfg.controller.stale_after {
            stale_ticks += 1;
        }
    }
    Ok(SimLog {
        ticks: std::mem::take(&mut cl.log),
        marks: std::mem::take(&mut cl.marks),
        collisions: cl.collisions,
        min_gap: cl.min_gap,
        frames,
        dt,
        stale_ticks,
        missed_ticks: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_scripts_parse_and_reject() {
        let c = parse_command_script("3:left, 0.5:go,6.25:STOP").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].command, RobotCommand::Go);
        assert_eq!(c[2].arrival, 6.25);
        assert!(parse_command_script("1:jump").is_err());
        assert!(parse_command_script("x:go").is_err());
        assert!(parse_command_script("-1:go").is_err());
    }
}
