//! The shipped depth network: its weights are the documented hand design, and its per-sector
//! obstacle depths match the simulator's ground truth (no false obstacles from the floor).
//! Also: depth frames round-trip through 16-bit PNG and the image-sequence source.

use nalgebra::{Isometry2, Vector2};
use sepstream_nn::{ModelSpec, Network, Weights};
use sepstream_testkit::repo_root;
use sepstream_vision::perception::{hand_designed_weights, DepthPerception};
use sepstream_vision::sim::pose_facing_obstacle;
use sepstream_vision::source::{write_depth_png, DepthSource, ImageSequence};
use sepstream_vision::{DepthFrame, DepthNoise, DiffDrive, SimDepthCamera, World, WorldParams};

/// `assets/depth_sectors.safetensors` is exactly `hand_designed_weights` for the default camera.
/// `SEPSTREAM_WRITE_ASSETS=1 cargo test -p sepstream-vision --test perception` rewrites it.
#[test]
fn shipped_weights_are_the_hand_design() {
    let spec_path = repo_root().join("configs/depth_sectors.toml");
    let spec = ModelSpec::load(&spec_path).unwrap();
    let cam = SimDepthCamera::default_robot(DepthNoise::none(), 0);
    let w = hand_designed_weights(&spec, cam.intrinsics(), 0.25).unwrap();
    let asset = repo_root().join("assets/depth_sectors.safetensors");
    if std::env::var_os("SEPSTREAM_WRITE_ASSETS").is_some() {
        std::fs::create_dir_all(asset.parent().unwrap()).unwrap();
        w.save(&asset).unwrap();
    }
    let shipped = Weights::load(&asset).unwrap();
    assert_eq!(shipped, w);
    let net = Network::load(&spec_path).unwrap();
    assert_eq!(net.weights(), w);
}

/// Obstacle depth per pixel eroded by the filters' footprint: the farthest depth within
/// +-3 columns and +-2 rows (infinite if any of it is not an obstacle). An obstacle narrower or
/// shorter than the network's 7x5 receptive field is not promised to be seen at full strength.
fn eroded(truth: &DepthFrame) -> Vec<f32> {
    let (w, h) = (truth.width(), truth.height());
    let at = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            return f32::INFINITY;
        }
        let z = truth.row(y as usize)[x as usize];
        if z > 0.0 {
            z
        } else {
            f32::INFINITY
        }
    };
    let mut out = vec![f32::INFINITY; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut m = 0.0f32;
            for dy in -2..=2 {
                for dx in -3..=3 {
                    m = m.max(at(x + dx, y + dy));
                }
            }
            out[y as usize * w + x as usize] = m;
        }
    }
    out
}

/// Per sector, nearest obstacle depth from perception (noisy sensor with dropouts) against the
/// noise-free, floor-free render: never nearer than the nearest real obstacle in or within 4
/// columns of the sector (minus 10%), and
/// within 15% of every obstacle at least as large as the receptive field.
#[test]
fn sector_depths_match_ground_truth_and_the_floor_is_not_an_obstacle() {
    let drive = DiffDrive::default();
    let (mut n_cmp, mut abs_err, mut worst_rel) = (0, 0.0, 0.0f64);
    for seed in 0..30u64 {
        let world = World::random(&WorldParams::default(), 1000 + seed);
        let pose = pose_facing_obstacle(&world, &drive, seed, 0.3, 3.0).unwrap();
        let cam = SimDepthCamera::default_robot(DepthNoise::default(), seed);
        let truth_cam = SimDepthCamera::default_robot(DepthNoise::none(), seed);
        let mut per = DepthPerception::load(
            &repo_root().join("configs/depth_sectors.toml"),
            cam.intrinsics(),
        )
        .unwrap();
        let frame = cam.capture(&world, &pose, 1);
        let r = per.process_frame(&frame, 1, 0.0, 0.0).unwrap();
        let mut no_floor = world.clone();
        no_floor.floor = false;
        let truth = truth_cam.capture(&no_floor, &pose, 1);
        let robust = eroded(&truth);
        for s in 0..r.n {
            let (c0, c1) = (s * 160 / r.n, (s + 1) * 160 / r.n);
            // The filters blur +-4 input columns across sector edges: a near obstacle just
            // outside a sector may show (blurred) inside it, which errs on the safe side.
            let (w0, w1) = (c0.saturating_sub(4), (c1 + 4).min(160));
            let gt_min = truth
                .rows()
                .flat_map(|row| row[w0..w1].iter().copied())
                .filter(|&z| z > 0.0)
                .fold(f32::INFINITY, f32::min) as f64;
            let gt_robust = robust
                .chunks_exact(160)
                .flat_map(|row| row[c0..c1].iter().copied())
                .fold(f32::INFINITY, f32::min) as f64;
            let got = r.depth[s] as f64;
            assert!(
                got >= 0.9 * gt_min - 0.05,
                "seed {seed} sector {s}: perceived {got:.3} m, nearest real obstacle {gt_min:.3} m"
            );
            if gt_robust < 3.0 {
                assert!(
                    got <= 1.15 * gt_robust + 0.05,
                    "seed {seed} sector {s}: perceived {got:.3} m, obstacle at {gt_robust:.3} m (nearest pixel {gt_min:.3} m)"
                );
                n_cmp += 1;
                abs_err += (got - gt_robust).abs();
                worst_rel = worst_rel.max((got - gt_robust).abs() / gt_robust);
            }
        }
    }
    eprintln!(
        "sectors with an obstacle within 3 m: {n_cmp}; |perceived - obstacle|: mean {:.3} m, worst {:.1}%",
        abs_err / n_cmp as f64,
        100.0 * worst_rel
    );
    assert!(n_cmp > 60);
}

#[test]
fn empty_floor_gives_no_obstacle() {
    // A huge room: only the floor is within range.
    let world = World::room(40.0, 40.0, 0.1, 2.0);
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 4);
    let mut per = DepthPerception::load(
        &repo_root().join("configs/depth_sectors.toml"),
        cam.intrinsics(),
    )
    .unwrap();
    let pose = Isometry2::new(Vector2::new(20.0, 20.0), 0.7);
    let r = per
        .process_frame(&cam.capture(&world, &pose, 0), 1, 0.0, 0.0)
        .unwrap();
    assert!(
        r.depth[..r.n].iter().all(|d| d.is_infinite()),
        "{:?}",
        &r.depth[..r.n]
    );
}

#[test]
fn depth_png_sequence_round_trip() {
    let dir = std::env::temp_dir().join(format!("sepstream_vision_png_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = World::random(&WorldParams::default(), 2);
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 2);
    let mut frames = Vec::new();
    for i in 0..3 {
        let f = cam.capture(
            &world,
            &Isometry2::new(Vector2::new(2.0 + i as f64 * 0.1, 3.0), 0.2),
            i,
        );
        write_depth_png(&f, &dir.join(format!("depth_{i:03}.png"))).unwrap();
        frames.push(f);
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let mut seq = ImageSequence::from_dir(&dir, 30.0).unwrap();
    assert_eq!(seq.len(), 3);
    let mut out = DepthFrame::new(1, 1, 1);
    for (i, f) in frames.iter().enumerate() {
        let t = seq.next_depth(&mut out).unwrap().unwrap();
        assert!((t - i as f64 / 30.0).abs() < 1e-12);
        assert_eq!(
            out,
            f.to_mm().to_metres(),
            "frame {i} (millimetre precision)"
        );
    }
    assert!(seq.next_depth(&mut out).unwrap().is_none());
    // A broken file names itself.
    std::fs::write(dir.join("zz_broken.png"), b"nope").unwrap();
    let mut seq = ImageSequence::from_dir(&dir, 30.0).unwrap();
    for _ in 0..3 {
        seq.next_depth(&mut out).unwrap();
    }
    let e = seq.next_depth(&mut out).unwrap_err().to_string();
    assert!(e.contains("zz_broken.png"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
