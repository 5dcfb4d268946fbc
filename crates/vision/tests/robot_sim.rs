//! The robot in simulation: "go" toward an obstacle never touches it (20 seeded worlds), "stop"
//! stops within one control period of its arrival, and slow perception never costs a control
//! tick (simulated clock, exactly; the real-thread twin is in `realtime.rs`).

use std::sync::Arc;

use sepstream_testkit::config_path;

use sepstream_vision::control::TickRecord;
use sepstream_vision::perception::DepthPerception;
use sepstream_vision::robot::Behaviour;
use sepstream_vision::sim::{pose_facing_obstacle, run_sim, ScheduledCommand, SimConfig};
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

fn moved(a: &TickRecord, b: &TickRecord) -> bool {
    a.pose != b.pose
}

#[test]
fn go_toward_an_obstacle_stops_or_turns_before_touching_it_in_20_seeded_worlds() {
    let drive = DiffDrive::default();
    for seed in 0..20u64 {
        let world = Arc::new(World::random(&WorldParams::default(), seed));
        let start = pose_facing_obstacle(&world, &drive, seed, 1.0, 2.5)
            .unwrap_or_else(|| panic!("seed {seed}: no start pose"));
        let cam = SimDepthCamera::default_robot(DepthNoise::default(), seed);
        let mut per = perception(&cam);
        let cfg = SimConfig {
            duration: 6.0,
            ..SimConfig::default()
        };
        let log = run_sim(&cfg, world.clone(), start, &[go_at(0.2)], &cam, &mut per).unwrap();
        let start_gap = drive.gap(&world, &start);
        assert_eq!(log.collisions, 0, "seed {seed}: touched an obstacle");
        assert!(log.min_gap > 0.0, "seed {seed}: min gap {}", log.min_gap);
        // It really drove at the obstacle and the override acted: it got close, then turned.
        assert!(
            log.ticks.iter().any(|t| matches!(
                t.behaviour,
                Behaviour::Avoiding | Behaviour::Slowing
            ) && t.wheels.left != t.wheels.right),
            "seed {seed}: never turned away"
        );
        assert!(
            log.min_gap < start_gap,
            "seed {seed}: never approached (gap {start_gap} -> {})",
            log.min_gap
        );
        assert!(
            log.min_gap < 0.6,
            "seed {seed}: stopped far away, min gap {}",
            log.min_gap
        );
    }
}

#[test]
fn stop_halts_the_robot_within_one_control_period_of_its_arrival() {
    let drive = DiffDrive::default();
    for (i, hz) in [100.0, 250.0, 1000.0].into_iter().enumerate() {
        for seed in 0..4u64 {
            let world = Arc::new(World::random(&WorldParams::default(), 100 + seed));
            let start = pose_facing_obstacle(&world, &drive, seed, 2.0, 3.5).unwrap();
            let cam = SimDepthCamera::default_robot(DepthNoise::default(), seed);
            let mut per = perception(&cam);
            let cfg = SimConfig {
                control_hz: hz,
                duration: 2.5,
                ..SimConfig::default()
            };
            // Arrival deliberately off the tick grid.
            let stop_t = 1.0 + 0.123_4 * (seed as f64 + 1.0) + 0.000_37 * i as f64;
            let cmds = [
                go_at(0.1),
                ScheduledCommand {
                    arrival: stop_t,
                    command: RobotCommand::Stop,
                },
            ];
            let log = run_sim(&cfg, world, start, &cmds, &cam, &mut per).unwrap();
            let dt = log.dt;
            // It was moving just before the stop arrived.
            let before: Vec<_> = log.ticks.iter().filter(|t| t.t < stop_t).collect();
            assert!(
                moved(before[before.len() - 2], before[before.len() - 1]),
                "{hz} Hz seed {seed}: not moving before stop"
            );
            let first = log.ticks.iter().position(|t| t.t >= stop_t).unwrap();
            let applied = &log.ticks[first];
            assert!(
                applied.t - stop_t < dt,
                "applied {} s after arrival, period {dt}",
                applied.t - stop_t
            );
            assert_eq!(applied.behaviour, Behaviour::Stopped);
            assert_eq!((applied.wheels.left, applied.wheels.right), (0.0, 0.0));
            // No motion from that tick on: the pose after it equals the pose before it.
            let held = log.ticks[first - 1].pose;
            assert!(
                log.ticks[first..].iter().all(|t| t.pose == held),
                "{hz} Hz seed {seed}: moved after stop"
            );
            assert_eq!(log.marks.last().unwrap().command, RobotCommand::Stop);
        }
    }
}

#[test]
fn simulated_perception_ten_times_slower_is_marked_stale_and_costs_no_tick() {
    let drive = DiffDrive::default();
    let world = Arc::new(World::random(&WorldParams::default(), 5));
    let start = pose_facing_obstacle(&world, &drive, 5, 1.0, 2.5).unwrap();
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 5);
    let mut per = perception(&cam);
    let cfg = SimConfig {
        control_hz: 500.0,
        perception_slowdown: 10.0,
        duration: 6.0,
        ..SimConfig::default()
    };
    let log = run_sim(&cfg, world, start, &[go_at(0.0)], &cam, &mut per).unwrap();
    assert_eq!(log.ticks.len(), 3000, "every control tick ran");
    assert_eq!(log.missed_ticks, 0);
    // Frames every 10/30 s, each ready 10/30 s after capture.
    assert_eq!(log.frames, 18);
    let stale = cfg.controller.stale_after;
    for t in &log.ticks {
        // The reading used is never younger than the slowed latency.
        assert!(
            t.perception_age >= 10.0 / 30.0 - 1e-9,
            "age {}",
            t.perception_age
        );
        assert!(t.perception_age > stale);
        assert_eq!(
            t.behaviour,
            Behaviour::Stale,
            "go held because perception is stale"
        );
    }
    assert_eq!(log.stale_ticks, 3000);
    assert_eq!(log.collisions, 0);
}

#[test]
fn same_seed_same_run() {
    let drive = DiffDrive::default();
    let run = || {
        let world = Arc::new(World::random(&WorldParams::default(), 9));
        let start = pose_facing_obstacle(&world, &drive, 9, 1.0, 2.5).unwrap();
        let cam = SimDepthCamera::default_robot(DepthNoise::default(), 9);
        let mut per = perception(&cam);
        let cmds = [
            go_at(0.1),
            ScheduledCommand {
                arrival: 1.5,
                command: RobotCommand::Left,
            },
        ];
        let cfg = SimConfig {
            duration: 3.0,
            ..SimConfig::default()
        };
        run_sim(&cfg, world, start, &cmds, &cam, &mut per).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.ticks, b.ticks);
    assert_eq!(a.marks, b.marks);
}
