//! Real threads: perception slowed to 10x its frame period never costs the fixed-rate control
//! loop a tick; its readings are marked stale by their age. In its own test binary so that no
//! other test competes for the cores while it runs.

use std::sync::Arc;

use sepstream_testkit::config_path;

use sepstream_vision::perception::DepthPerception;
use sepstream_vision::rt::{run_realtime, scripted_feed, RtConfig};
use sepstream_vision::sim::{pose_facing_obstacle, ScheduledCommand};
use sepstream_vision::{DepthNoise, DiffDrive, RobotCommand, SimDepthCamera, World, WorldParams};

fn perception(cam: &SimDepthCamera) -> DepthPerception {
    DepthPerception::load(&config_path("depth_sectors.toml"), cam.intrinsics())
        .expect("configs/depth_sectors.toml loads")
}

fn go_at(t: f64) -> ScheduledCommand {
    ScheduledCommand {
        arrival: t,
        command: RobotCommand::Go,
    }
}

#[test]
fn real_threads_perception_ten_times_slower_misses_no_control_tick() {
    let drive = DiffDrive::default();
    let world = Arc::new(World::random(&WorldParams::default(), 6));
    let start = pose_facing_obstacle(&world, &drive, 6, 1.0, 2.5).unwrap();
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 6);
    let per = perception(&cam);
    let cfg = RtConfig {
        control_hz: 200.0,
        perception_slowdown: 10.0,
        duration: 2.0,
        // As a robot's control thread would run (granted when the test runs as root).
        fifo_priority: Some(50),
        ..RtConfig::default()
    };
    let rep = run_realtime(
        &cfg,
        world,
        start,
        cam,
        per,
        Some(scripted_feed(vec![go_at(0.0)])),
    )
    .unwrap();
    let log = &rep.log;
    assert_eq!(
        log.missed_ticks,
        0,
        "missed ticks (max lateness {:.3} ms, max tick {:.3} ms, SCHED_FIFO {})",
        rep.max_lateness * 1e3,
        rep.max_duration * 1e3,
        rep.fifo
    );
    assert_eq!(log.ticks.len(), 400);
    // Slowed perception: at most one frame per 1/3 s, so every tick's reading is stale.
    assert!(rep.frames <= 7, "frames {}", rep.frames);
    assert!(log
        .ticks
        .iter()
        .all(|t| t.perception_age > cfg.controller.stale_after));
    assert_eq!(log.stale_ticks, 400);
    assert!(
        log.ticks.iter().filter(|t| t.perception_seq > 0).count() > 0,
        "readings did arrive"
    );
    assert_eq!(log.collisions, 0);
}
