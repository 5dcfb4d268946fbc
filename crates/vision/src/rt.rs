//! Real-time mode: the control loop runs at a fixed rate on the calling thread; perception (the
//! simulated camera read out row by row into the row-streamed network) and the keyword command
//! source run on their own threads and hand results over through latest-value slots. The loop
//! never waits for them: it reads whatever is newest, and judges perception by its age.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nalgebra::Isometry2;

use crate::camera::{FrameRays, SimDepthCamera};
use crate::control::ControlLoop;
use crate::latest::{latest, LatestWriter};
use crate::perception::{DepthPerception, SectorReading};
use crate::robot::{CommandMsg, Controller, ControllerConfig, DiffDrive};
use crate::sim::{ScheduledCommand, SimLog};
use crate::{VisionError, World};

/// The loop's clock: seconds since the run started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Starts now.
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
    /// Seconds since start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    /// The instant `t` seconds after start.
    pub fn at(&self, t: f64) -> Instant {
        self.start + Duration::from_secs_f64(t.max(0.0))
    }
}

/// Sleeps until `t` (clock seconds) or until `stop` is set, in slices of at most 20 ms.
pub fn sleep_until(clock: &Clock, t: f64, stop: &AtomicBool) {
    loop {
        let left = t - clock.now();
        if left <= 0.0 || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_secs_f64(left.min(0.02)));
    }
}

/// A command source run on its own thread: publishes commands until `stop` is set.
pub type CommandFeed = Box<dyn FnOnce(LatestWriter<CommandMsg>, Clock, Arc<AtomicBool>) + Send>;

/// A feed that replays scheduled commands at their arrival times (e.g. keyword events found in
/// a WAV file, or a script).
pub fn scripted_feed(commands: Vec<ScheduledCommand>) -> CommandFeed {
    Box::new(move |mut w, clock, stop| {
        for (i, c) in commands.iter().enumerate() {
            sleep_until(&clock, c.arrival, &stop);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            w.write(CommandMsg {
                seq: i as u64 + 1,
                command: c.command,
                arrival: clock.now(),
            });
        }
    })
}

/// Settings of a real-time run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RtConfig {
    /// Control rate (Hz).
    pub control_hz: f64,
    /// Camera frame rate (Hz).
    pub camera_hz: f64,
    /// Perception slowed by this factor: each frame takes `factor / camera_hz` (the thread
    /// sleeps the difference after the real work).
    pub perception_slowdown: f64,
    /// Run length (s).
    pub duration: f64,
    /// Controller settings.
    pub controller: ControllerConfig,
    /// Robot.
    pub drive: DiffDrive,
    /// The loop sleeps until this long before a deadline, then spins (s).
    pub spin: f64,
    /// Run the control loop under SCHED_FIFO at this priority (1..=99; Linux, needs root or
    /// CAP_SYS_NICE) for the run, restoring the thread's policy after. Refused = normal policy.
    pub fifo_priority: Option<i32>,
}

impl Default for RtConfig {
    fn default() -> Self {
        RtConfig {
            control_hz: 200.0,
            camera_hz: 30.0,
            perception_slowdown: 1.0,
            duration: 10.0,
            controller: ControllerConfig::default(),
            drive: DiffDrive::default(),
            spin: 0.0003,
            fifo_priority: None,
        }
    }
}

/// Timing of a real-time run, beside the usual log.
#[derive(Clone, Debug)]
pub struct RtReport {
    /// Ticks, commands, collisions, as in simulation (durations and lateness filled in).
    pub log: SimLog,
    /// Ticks whose work took longer than the period.
    pub overruns: u64,
    /// Longest tick work (s).
    pub max_duration: f64,
    /// Latest start after a deadline (s).
    pub max_lateness: f64,
    /// Perception frames published.
    pub frames: u64,
    /// Whether the loop ran under SCHED_FIFO.
    pub fifo: bool,
}

/// The calling thread's scheduling policy, to restore.
struct SavedPolicy {
    #[cfg(target_os = "linux")]
    policy: i32,
    #[cfg(target_os = "linux")]
    param: libc::sched_param,
}

/// Puts the calling thread under SCHED_FIFO at `priority`; `None` if refused or unsupported.
#[cfg(target_os = "linux")]
fn raise_priority(priority: i32) -> Option<SavedPolicy> {
    // SAFETY: plain syscalls on the calling thread (pid 0) with valid pointers to locals.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param: libc::sched_param = std::mem::zeroed();
        if policy < 0 || libc::sched_getparam(0, &mut param) != 0 {
            return None;
        }
        let fifo = libc::sched_param {
            sched_priority: priority.clamp(1, 99),
        };
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &fifo) != 0 {
            return None;
        }
        Some(SavedPolicy { policy, param })
    }
}

#[cfg(not(target_os = "linux"))]
fn raise_priority(_priority: i32) -> Option<SavedPolicy> {
    None
}

fn restore_priority(saved: SavedPolicy) {
    #[cfg(target_os = "linux")]
    // SAFETY: as in `raise_priority`.
    unsafe {
        libc::sched_setscheduler(0, saved.policy, &saved.param);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = saved;
}

/// While alive, the thread that made it runs under SCHED_FIFO (if the system allowed it); the
/// previous policy comes back on drop. For measurement and real-time threads outside the loop.
pub struct FifoGuard(Option<SavedPolicy>);

impl FifoGuard {
    /// Tries SCHED_FIFO at `priority` (1..=99) for the calling thread; Linux with root or
    /// CAP_SYS_NICE, otherwise the guard is inactive and nothing changes.
    pub fn new(priority: i32) -> Self {
        FifoGuard(raise_priority(priority))
    }

    /// Whether the thread is under SCHED_FIFO.
    pub fn active(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for FifoGuard {
    fn drop(&mut self) {
        if let Some(saved) = self.0.take() {
            restore_priority(saved);
        }
    }
}

/// Runs the robot in real time for `cfg.duration` seconds. Perception runs on a thread that
/// renders the simulated camera row by row at the robot's latest pose and streams each row into
/// the network; `commands` (if any) runs on another thread. The calling thread runs the loop.
///
/// A deadline slot is **missed** when its tick starts more than one period late; the loop then
/// skips to the next future slot and counts the skipped ones.
pub fn run_realtime(
    cfg: &RtConfig,
    world: Arc<World>,
    start: Isometry2<f64>,
    camera: SimDepthCamera,
    mut perception: DepthPerception,
    commands: Option<CommandFeed>,
) -> Result<RtReport, VisionError> {
    let period = 1.0 / cfg.control_hz;
    let n_slots = (cfg.duration * cfg.control_hz).round() as u64;
    let (mut pw, pr) = latest(SectorReading::empty());
    let (cw, cr) = latest(CommandMsg::none());
    let (pose_w, mut pose_r) = latest(start);
    let stop = Arc::new(AtomicBool::new(false));
    let clock = Clock::start();

    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let perception_thread = {
        let (stop, world, frames) = (stop.clone(), world.clone(), frames.clone());
        let frame_period = 1.0 / cfg.camera_hz;
        let slowdown = cfg.perception_slowdown.max(1.0);
        std::thread::Builder::new()
            .name("perception".into())
            .spawn(move || -> Result<(), VisionError> {
                let mut row = vec![0.0f32; camera.intrinsics().width];
                let mut rays = FrameRays::default();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t_cap = clock.now();
                    seq += 1;
                    let pose = *pose_r.latest();
                    perception.begin_frame(seq, t_cap);
                    camera.begin_frame(&world, &pose, &mut rays);
                    for v in 0..camera.intrinsics().height {
                        // Rows come in as the sensor reads them out; each is streamed at once.
                        camera.render_row_with(&world, &rays, seq, v, &mut row);
                        perception.push_row(&row)?;
                    }
                    // A slowed-down perception: the result comes `slowdown` frame periods late.
                    sleep_until(&clock, t_cap + slowdown * frame_period, &stop);
                    let r = *perception.finish_frame(clock.now());
                    pw.write(r);
                    frames.fetch_add(1, Ordering::Relaxed);
                    sleep_until(&clock, t_cap + slowdown.max(1.0) * frame_period, &stop);
                }
                Ok(())
            })
            .map_err(|e| VisionError::Thread(e.to_string()))?
    };
    let command_thread = match commands {
        Some(feed) => {
            let stop = stop.clone();
            Some(
                std::thread::Builder::new()
                    .name("commands".into())
                    .spawn(move || feed(cw, clock, stop))
                    .map_err(|e| VisionError::Thread(e.to_string()))?,
            )
        }
        None => None,
    };

    let mut cl = ControlLoop::new(
        Controller::new(cfg.controller, cfg.drive),
        cfg.drive,
        world,
        start,
        pr,
        cr,
        Some(pose_w),
        period,
        n_slots as usize,
    );
    let (mut overruns, mut missed, mut stale_ticks) = (0u64, 0u64, 0u64);
    let (mut max_duration, mut max_lateness) = (0.0f64, 0.0f64);
    let saved = cfg.fifo_priority.and_then(raise_priority);
    let fifo = saved.is_some();
    // The schedule starts once everything is set up (threads spawned, buffers allocated).
    let t_start = clock.now() + 0.002;
    let mut k = 0u64;
    while k < n_slots {
        let t = t_start + k as f64 * period;
        let deadline = clock.at(t);
        let now = Instant::now();
        if deadline > now {
            let left = deadline - now;
            let spin = Duration::from_secs_f64(cfg.spin);
            if left > spin {
                std::thread::sleep(left - spin);
            }
            while Instant::now() < deadline {
                std::hint::spin_loop();
            }
        }
        let t0 = Instant::now();
        let lateness = t0.saturating_duration_since(deadline).as_secs_f64();
        let d = cl.tick(t);
        let dur = t0.elapsed().as_secs_f64();
        cl.set_last_timing(dur, lateness);
        if d.perception_age > cfg.controller.stale_after {
            stale_ticks += 1;
        }
        if dur > period {
            overruns += 1;
        }
        max_duration = max_duration.max(dur);
        max_lateness = max_lateness.max(lateness);
        // Skip (and count) slots whose whole period has already passed.
        let done = clock.now();
        let mut next = k + 1;
        while next < n_slots && done > t_start + (next as f64 + 1.0) * period {
            next += 1;
            missed += 1;
        }
        k = next;
    }
    if let Some(saved) = saved {
        restore_priority(saved);
    }
    stop.store(true, Ordering::Relaxed);
    let perception_result = perception_thread
        .join()
        .map_err(|_| VisionError::Thread("perception thread panicked".into()))?;
    if let Some(h) = command_thread {
        h.join()
            .map_err(|_| VisionError::Thread("command thread panicked".into()))?;
    }
    perception_result?;
    Ok(RtReport {
        log: SimLog {
            ticks: std::mem::take(&mut cl.log),
            marks: std::mem::take(&mut cl.marks),
            collisions: cl.collisions,
            min_gap: cl.min_gap,
            frames: frames.load(Ordering::Relaxed),
            dt: period,
            stale_ticks,
            missed_ticks: missed,
        },
        overruns,
        max_duration,
        max_lateness,
        frames: frames.load(Ordering::Relaxed),
        fifo,
    })
}
