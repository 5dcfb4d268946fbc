//! The differential-drive robot and its controller: keyword commands (go / stop / left / right)
//! plus depth-based obstacle avoidance that overrides "go" near an obstacle.
//!
//! [`Controller::tick`] is the body of the fixed-rate control loop: it takes the latest
//! perception reading and the latest command by reference, computes wheel speeds, and never
//! allocates, locks or waits.

use nalgebra::{Isometry2, Vector2};

use crate::perception::SectorReading;
use crate::World;

/// A keyword command for the robot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RobotCommand {
    /// Drive forward (with obstacle avoidance).
    Go,
    /// Stop.
    Stop,
    /// Turn left in place by the configured angle, then resume.
    Left,
    /// Turn right in place by the configured angle, then resume.
    Right,
}

impl RobotCommand {
    /// The command for a keyword label (`go`, `stop`, `left`, `right`), case-insensitive.
    pub fn from_label(label: &str) -> Option<Self> {
        match label.to_ascii_lowercase().as_str() {
            "go" => Some(RobotCommand::Go),
            "stop" => Some(RobotCommand::Stop),
            "left" => Some(RobotCommand::Left),
            "right" => Some(RobotCommand::Right),
            _ => None,
        }
    }
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RobotCommand::Go => "go",
            RobotCommand::Stop => "stop",
            RobotCommand::Left => "left",
            RobotCommand::Right => "right",
        }
    }
}

/// The latest command as handed to the control loop: `seq` increases with every new command.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommandMsg {
    /// 0 = no command yet.
    pub seq: u64,
    /// The command (meaningless when `seq == 0`).
    pub command: RobotCommand,
    /// When it arrived (s, the loop's clock).
    pub arrival: f64,
}

impl CommandMsg {
    /// No command yet.
    pub fn none() -> Self {
        CommandMsg {
            seq: 0,
            command: RobotCommand::Stop,
            arrival: f64::NEG_INFINITY,
        }
    }
}

/// Wheel rim speeds (m/s).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WheelSpeeds {
    /// Left wheel.
    pub left: f64,
    /// Right wheel.
    pub right: f64,
}

/// Differential-drive kinematics, and the robot's footprint (a disc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiffDrive {
    /// Distance between the wheels (m).
    pub wheel_base: f64,
    /// Wheel speed limit (m/s).
    pub max_wheel_speed: f64,
    /// Footprint radius around the axle centre (m).
    pub radius: f64,
}

impl Default for DiffDrive {
    fn default() -> Self {
        DiffDrive {
            wheel_base: 0.3,
            max_wheel_speed: 0.8,
            radius: 0.18,
        }
    }
}

impl DiffDrive {
    /// Wheel speeds for forward speed `v` (m/s) and turn rate `w` (rad/s, left positive),
    /// scaled down together if a wheel would exceed its limit.
    pub fn wheels(&self, v: f64, w: f64) -> WheelSpeeds {
        let l = v - w * self.wheel_base / 2.0;
        let r = v + w * self.wheel_base / 2.0;
        let m = l.abs().max(r.abs());
        let k = if m > self.max_wheel_speed {
            self.max_wheel_speed / m
        } else {
            1.0
        };
        WheelSpeeds {
            left: l * k,
            right: r * k,
        }
    }

    /// Exact integration of constant wheel speeds over `dt` (an arc, or a line).
    pub fn advance(&self, pose: &Isometry2<f64>, ws: WheelSpeeds, dt: f64) -> Isometry2<f64> {
        let v = (ws.left + ws.right) / 2.0;
        let w = (ws.right - ws.left) / self.wheel_base;
        let th = pose.rotation.angle();
        let (dx, dy) = if (w * dt).abs() < 1e-9 {
            (v * dt * th.cos(), v * dt * th.sin())
        } else {
            let r = v / w;
            let th2 = th + w * dt;
            (r * (th2.sin() - th.sin()), -r * (th2.cos() - th.cos()))
        };
        Isometry2::new(
            Vector2::new(pose.translation.x + dx, pose.translation.y + dy),
            th + w * dt,
        )
    }

    /// Gap between the footprint and the nearest obstacle (negative = overlapping).
    pub fn gap(&self, world: &World, pose: &Isometry2<f64>) -> f64 {
        world.clearance(&pose.translation.vector.into()) - self.radius
    }
}

/// Controller settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControllerConfig {
    /// Cruise speed for "go" (m/s).
    pub cruise_speed: f64,
    /// Turn rate for commanded and avoidance turns (rad/s).
    pub turn_rate: f64,
    /// Angle of a commanded "left"/"right" turn (rad).
    pub turn_angle: f64,
    /// Half width of the corridor the robot sweeps, with margin (m).
    pub corridor_half_width: f64,
    /// Obstacle depth (from the camera) at which "go" stops forward motion and turns away (m).
    pub stop_depth: f64,
    /// Obstacle depth below which "go" slows down linearly towards `stop_depth` (m) and steers
    /// away.
    pub slow_depth: f64,
    /// Slowest forward speed while slowing (m/s).
    pub creep_speed: f64,
    /// A perception reading older than this (from capture) is stale: "go" holds still (s).
    pub stale_after: f64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            cruise_speed: 0.5,
            turn_rate: 1.5,
            turn_angle: std::f64::consts::FRAC_PI_2,
            corridor_half_width: 0.25,
            stop_depth: 0.45,
            slow_depth: 1.2,
            creep_speed: 0.1,
            stale_after: 0.2,
        }
    }
}

/// Why the controller chose its output this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// No command yet, or "stop".
    Stopped,
    /// "go" with a clear path.
    Cruising,
    /// "go", slowing down for an obstacle ahead.
    Slowing,
    /// "go" overridden: obstacle within `stop_depth`, turning away.
    Avoiding,
    /// "go" overridden: perception is stale, holding still.
    Stale,
    /// A commanded left/right turn.
    Turning,
}

/// What one tick decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickDecision {
    /// Wheel speeds to apply until the next tick.
    pub wheels: WheelSpeeds,
    /// Why.
    pub behaviour: Behaviour,
    /// Age of the perception reading used (s; infinite before the first).
    pub perception_age: f64,
    /// True when this tick applied a new command.
    pub new_command: bool,
}

/// The control law. Holds only plain values: a tick never allocates.
#[derive(Clone, Debug)]
pub struct Controller {
    cfg: ControllerConfig,
    drive: DiffDrive,
    last_seq: u64,
    /// "go" or "stop": what to resume after a commanded turn.
    going: bool,
    /// Commanded turn: direction (+1 left) and end time.
    turn: Option<(f64, f64)>,
    /// Sticky avoidance direction while an obstacle is ahead.
    avoid_dir: f64,
}

impl Controller {
    /// A stopped controller.
    pub fn new(cfg: ControllerConfig, drive: DiffDrive) -> Self {
        Controller {
            cfg,
            drive,
            last_seq: 0,
            going: false,
            turn: None,
            avoid_dir: 0.0,
        }
    }

    /// Settings.
    pub fn config(&self) -> &ControllerConfig {
        &self.cfg
    }

    /// Nearest obstacle depth inside the corridor ahead, and the free depth left and right.
    fn corridor(&self, p: &SectorReading) -> (f64, f64, f64) {
        let mut ahead = f64::INFINITY;
        let (mut left, mut right) = (f64::INFINITY, f64::INFINITY);
        let hw = self.cfg.corridor_half_width;
        for i in 0..p.n {
            let z = p.depth[i] as f64;
            if !z.is_finite() {
                continue;
            }
            // Lateral extent (image right positive) of the sector at that depth.
            let (a, b) = (z * p.slope_lo[i] as f64, z * p.slope_hi[i] as f64);
            if b >= -hw && a <= hw {
                ahead = ahead.min(z);
            }
            // Image left half = robot left.
            if p.slope_hi[i] <= 0.0 {
                left = left.min(z);
            } else if p.slope_lo[i] >= 0.0 {
                right = right.min(z);
            }
        }
        (ahead, left, right)
    }

    /// One control tick at time `now`. No allocation, no lock, no wait.
    pub fn tick(&mut self, now: f64, p: &SectorReading, cmd: &CommandMsg) -> TickDecision {
        let new_command = cmd.seq != self.last_seq && cmd.seq != 0;
        if new_command {
            self.last_seq = cmd.seq;
            match cmd.command {
                RobotCommand::Go => {
                    self.going = true;
                    self.turn = None;
                }
                RobotCommand::Stop => {
                    self.going = false;
                    self.turn = None;
                }
                RobotCommand::Left | RobotCommand::Right => {
                    let dir = if cmd.command == RobotCommand::Left {
                        1.0
                    } else {
                        -1.0
                    };
                    self.turn = Some((dir, now + self.cfg.turn_angle / self.cfg.turn_rate));
                }
            }
        }
        let age = p.age(now);
        let (v, w, behaviour) = if let Some((dir, until)) = self.turn.filter(|t| now < t.1) {
            let _ = until;
            (0.0, dir * self.cfg.turn_rate, Behaviour::Turning)
        } else if !self.going {
            self.turn = None;
            (0.0, 0.0, Behaviour::Stopped)
        } else if p.seq == 0 || age > self.cfg.stale_after {
            self.turn = None;
            (0.0, 0.0, Behaviour::Stale)
        } else {
            self.turn = None;
            let (ahead, left, right) = self.corridor(p);
            if ahead <= self.cfg.stop_depth {
                if self.avoid_dir == 0.0 {
                    self.avoid_dir = if left >= right { 1.0 } else { -1.0 };
                }
                (
                    0.0,
                    self.avoid_dir * self.cfg.turn_rate,
                    Behaviour::Avoiding,
                )
            } else if ahead < self.cfg.slow_depth {
                // Slow down (to a creep, so the stop depth is reached) and steer towards the
                // freer side, more the nearer the obstacle; the side is kept until clear.
                let k = (ahead - self.cfg.stop_depth) / (self.cfg.slow_depth - self.cfg.stop_depth);
                if self.avoid_dir == 0.0 {
                    self.avoid_dir = if left >= right { 1.0 } else { -1.0 };
                }
                (
                    (self.cfg.cruise_speed * k).max(self.cfg.creep_speed),
                    self.avoid_dir * self.cfg.turn_rate * (1.0 - k),
                    Behaviour::Slowing,
                )
            } else {
                self.avoid_dir = 0.0;
                (self.cfg.cruise_speed, 0.0, Behaviour::Cruising)
            }
        };
        TickDecision {
            wheels: self.drive.wheels(v, w),
            behaviour,
            perception_age: age,
            new_command,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinematics_line_arc_and_spin() {
        let d = DiffDrive::default();
        let p0 = Isometry2::new(Vector2::new(0.0, 0.0), 0.0);
        let p = d.advance(&p0, d.wheels(0.5, 0.0), 2.0);
        assert!((p.translation.x - 1.0).abs() < 1e-12 && p.translation.y.abs() < 1e-12);
        // Spin in place: no translation.
        let p = d.advance(&p0, d.wheels(0.0, 1.0), 1.0);
        assert!(p.translation.vector.norm() < 1e-12);
        assert!((p.rotation.angle() - 1.0).abs() < 1e-12);
        // Quarter circle of radius 1 at v = 0.5, w = 0.5 over pi s.
        let p = d.advance(&p0, d.wheels(0.5, 0.5), std::f64::consts::PI);
        assert!((p.translation.x - 1.0).abs() < 1e-9 && (p.translation.y - 1.0).abs() < 1e-9);
        // Speed limit scales both wheels.
        let ws = d.wheels(2.0, 0.0);
        assert!((ws.left - 0.8).abs() < 1e-12 && (ws.right - 0.8).abs() < 1e-12);
    }

    #[test]
    fn go_is_overridden_near_an_obstacle_and_by_staleness() {
        let mut c = Controller::new(ControllerConfig::default(), DiffDrive::default());
        let mut p = SectorReading::empty();
        p.n = 2;
        p.slope_lo = [0.0; 16];
        p.slope_hi = [0.0; 16];
        p.slope_lo[0] = -1.0;
        p.slope_hi[0] = 0.0;
        p.slope_lo[1] = 0.0;
        p.slope_hi[1] = 1.0;
        p.seq = 1;
        p.capture_time = 0.0;
        let go = CommandMsg {
            seq: 1,
            command: RobotCommand::Go,
            arrival: 0.0,
        };
        let d = c.tick(0.01, &p, &go);
        assert!(d.new_command);
        assert_eq!(d.behaviour, Behaviour::Cruising);
        p.depth[1] = 0.3;
        let d = c.tick(0.02, &p, &go);
        assert_eq!(d.behaviour, Behaviour::Avoiding);
        assert!(d.wheels.left + d.wheels.right == 0.0 && d.wheels.right > 0.0);
        let d = c.tick(1.0, &p, &go);
        assert_eq!(d.behaviour, Behaviour::Stale);
        let stop = CommandMsg {
            seq: 2,
            command: RobotCommand::Stop,
            arrival: 1.0,
        };
        let d = c.tick(1.01, &p, &stop);
        assert_eq!(d.behaviour, Behaviour::Stopped);
        assert_eq!(d.wheels, WheelSpeeds::default());
    }
}
