//! A steady-state control tick, a perception row, and a camera row allocate nothing.

use std::sync::Arc;

use sepstream_testkit::config_path;

use nalgebra::{Isometry2, Vector2};
use sepstream_testkit::count_allocations;
use sepstream_vision::camera::FrameRays;
use sepstream_vision::control::ControlLoop;
use sepstream_vision::latest::latest;
use sepstream_vision::perception::{DepthPerception, SectorReading};
use sepstream_vision::robot::{CommandMsg, Controller, ControllerConfig};
use sepstream_vision::{DepthNoise, DiffDrive, RobotCommand, SimDepthCamera, World, WorldParams};

#[global_allocator]
static ALLOC: sepstream_testkit::CountingAlloc = sepstream_testkit::CountingAlloc;

#[test]
fn control_tick_allocates_nothing() {
    let world = Arc::new(World::random(&WorldParams::default(), 1));
    let drive = DiffDrive::default();
    let start = Isometry2::new(Vector2::new(4.0, 3.0), 0.0);
    let (mut pw, pr) = latest(SectorReading::empty());
    let (mut cw, cr) = latest(CommandMsg::none());
    let (pose_w, mut pose_r) = latest(start);
    let mut cl = ControlLoop::new(
        Controller::new(ControllerConfig::default(), drive),
        drive,
        world,
        start,
        pr,
        cr,
        Some(pose_w),
        0.005,
        10_000,
    );
    let mut reading = SectorReading::empty();
    reading.n = 8;
    for i in 0..8 {
        reading.slope_lo[i] = -1.0 + i as f32 * 0.25;
        reading.slope_hi[i] = -0.75 + i as f32 * 0.25;
    }
    let mut t = 0.0;
    for k in 0..2000u64 {
        // Producers publish between ticks (as other threads would).
        reading.seq = k + 1;
        reading.capture_time = t - 0.01;
        reading.depth[3] = if k % 200 < 100 { 0.4 } else { 3.0 };
        pw.write(reading);
        if k % 300 == 0 {
            let cmd = [
                RobotCommand::Go,
                RobotCommand::Left,
                RobotCommand::Go,
                RobotCommand::Right,
            ][(k / 300 % 4) as usize];
            cw.write(CommandMsg {
                seq: k / 300 + 1,
                command: cmd,
                arrival: t,
            });
        }
        let (_, stats) = count_allocations(|| {
            cl.tick(t);
            let _ = pose_r.latest();
        });
        assert_eq!(stats.bytes, 0, "tick {k} allocated {stats:?}");
        assert_eq!(stats.allocations, 0);
        t += 0.005;
    }
    assert!(cl.marks.len() >= 6, "commands were applied");
}

#[test]
fn perception_row_and_camera_row_allocate_nothing() {
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 2);
    let mut per =
        DepthPerception::load(&config_path("depth_sectors.toml"), cam.intrinsics()).unwrap();
    let world = World::random(&WorldParams::default(), 2);
    let pose = Isometry2::new(Vector2::new(2.0, 2.0), 0.5);
    let mut row = vec![0.0f32; 160];
    let mut rays = FrameRays::default();
    cam.begin_frame(&world, &pose, &mut rays);
    for frame in 1..4u64 {
        let (_, stats) = count_allocations(|| cam.begin_frame(&world, &pose, &mut rays));
        assert_eq!(stats.bytes, 0, "camera frame plan");
        let (_, stats) = count_allocations(|| per.begin_frame(frame, 0.0));
        assert_eq!(stats.bytes, 0);
        for v in 0..120 {
            let (_, stats) =
                count_allocations(|| cam.render_row_with(&world, &rays, frame, v, &mut row));
            assert_eq!(stats.bytes, 0, "camera row {v}");
            let (r, stats) = count_allocations(|| per.push_row(&row));
            r.unwrap();
            assert_eq!(stats.bytes, 0, "perception row {v}");
            assert_eq!(stats.allocations, 0);
        }
        let (r, stats) = count_allocations(|| *per.finish_frame(0.03));
        assert_eq!(stats.bytes, 0, "frame end");
        assert_eq!(r.seq, frame);
    }
}
