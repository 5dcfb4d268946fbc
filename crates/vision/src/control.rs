//! The control loop body shared by the simulated-clock and real-time runners: read the latest
//! perception reading and command (never waiting), run the controller, move the simulated
//! robot, record the tick. All buffers are allocated in `new`.

use nalgebra::Isometry2;

use crate::latest::{LatestReader, LatestWriter};
use crate::perception::SectorReading;
use crate::robot::{Behaviour, CommandMsg, Controller, DiffDrive, TickDecision, WheelSpeeds};
use crate::World;
use std::sync::Arc;

/// One recorded control tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickRecord {
    /// Tick time (s, the loop's clock: simulated or since start).
    pub t: f64,
    /// Pose after the tick's motion: x, y (m), heading (rad).
    pub pose: [f64; 3],
    /// Wheel speeds applied.
    pub wheels: WheelSpeeds,
    /// Why.
    pub behaviour: Behaviour,
    /// Age of the perception reading used (s).
    pub perception_age: f64,
    /// Sequence number of that reading (0 = none yet).
    pub perception_seq: u64,
    /// Gap between footprint and nearest obstacle (m).
    pub gap: f64,
    /// Wall-clock duration of the tick's work (s; 0 in simulated-clock runs).
    pub duration: f64,
    /// How late the tick started after its deadline (s; 0 in simulated-clock runs).
    pub lateness: f64,
}

/// Where a command arrived, for plots and reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommandMark {
    /// Tick time at which the controller applied it.
    pub t: f64,
    /// Arrival time.
    pub arrival: f64,
    /// Robot position then.
    pub x: f64,
    /// Robot position then.
    pub y: f64,
    /// The command.
    pub command: crate::robot::RobotCommand,
}

/// The loop body: state of the simulated robot and the reading ends of the handoff slots.
pub struct ControlLoop {
    controller: Controller,
    drive: DiffDrive,
    world: Arc<World>,
    pose: Isometry2<f64>,
    perception: LatestReader<SectorReading>,
    commands: LatestReader<CommandMsg>,
    pose_out: Option<LatestWriter<Isometry2<f64>>>,
    dt: f64,
    /// Preallocated; recording stops (silently counted) when full.
    pub log: Vec<TickRecord>,
    /// Ticks not recorded because the log was full.
    pub unrecorded: u64,
    /// Commands applied, preallocated.
    pub marks: Vec<CommandMark>,
    /// Ticks where the footprint would have overlapped an obstacle (motion blocked).
    pub collisions: u64,
    /// Smallest gap seen (m).
    pub min_gap: f64,
    recorded_last: bool,
}

impl ControlLoop {
    /// A loop at period `dt` seconds, recording up to `log_capacity` ticks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        controller: Controller,
        drive: DiffDrive,
        world: Arc<World>,
        start: Isometry2<f64>,
        perception: LatestReader<SectorReading>,
        commands: LatestReader<CommandMsg>,
        pose_out: Option<LatestWriter<Isometry2<f64>>>,
        dt: f64,
        log_capacity: usize,
    ) -> Self {
        let min_gap = drive.gap(&world, &start);
        ControlLoop {
            controller,
            drive,
            world,
            pose: start,
            perception,
            commands,
            pose_out,
            dt,
            log: Vec::with_capacity(log_capacity),
            unrecorded: 0,
            marks: Vec::with_capacity(1024),
            collisions: 0,
            min_gap,
            recorded_last: false,
        }
    }

    /// Current pose.
    pub fn pose(&self) -> Isometry2<f64> {
        self.pose
    }

    /// The period.
    pub fn dt(&self) -> f64 {
        self.dt
    }

    /// One tick at time `now`: latest inputs -> controller -> robot moves for `dt` -> record.
    /// Never waits, locks or allocates (the log and marks are preallocated; when full, ticks are
    /// counted in `unrecorded` instead).
    pub fn tick(&mut self, now: f64) -> TickDecision {
        let reading = self.perception.latest();
        let cmd = self.commands.latest();
        let decision = self.controller.tick(now, reading, cmd);
        let seq = reading.seq;
        if decision.new_command && self.marks.len() < self.marks.capacity() {
            self.marks.push(CommandMark {
                t: now,
                arrival: cmd.arrival,
                x: self.pose.translation.x,
                y: self.pose.translation.y,
                command: cmd.command,
            });
        }
        let next = self.drive.advance(&self.pose, decision.wheels, self.dt);
        let gap = self.drive.gap(&self.world, &next);
        if gap < 0.0 {
            // The robot would touch an obstacle: it is blocked there (and this is counted).
            self.collisions += 1;
        } else {
            self.pose = next;
        }
        self.min_gap = self.min_gap.min(gap);
        if let Some(w) = self.pose_out.as_mut() {
            w.write(self.pose);
        }
        self.recorded_last = self.log.len() < self.log.capacity();
        if self.recorded_last {
            self.log.push(TickRecord {
                t: now,
                pose: [
                    self.pose.translation.x,
                    self.pose.translation.y,
                    self.pose.rotation.angle(),
                ],
                wheels: decision.wheels,
                behaviour: decision.behaviour,
                perception_age: decision.perception_age,
                perception_seq: seq,
                gap,
                duration: 0.0,
                lateness: 0.0,
            });
        } else {
            self.unrecorded += 1;
        }
        decision
    }

    /// Sets timing fields of the last recorded tick (real-time runner).
    pub fn set_last_timing(&mut self, duration: f64, lateness: f64) {
        if !self.recorded_last {
            return;
        }
        if let Some(r) = self.log.last_mut() {
            r.duration = duration;
            r.lateness = lateness;
        }
    }
}
