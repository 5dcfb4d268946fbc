//! Depth perception against its frame budget, and separable vs standard 2D convolution.
//!
//! `cargo bench --bench depth` (criterion groups `depth_frame` and `separable_vs_standard`),
//! then a summary table: one 160x120 depth frame per row and per frame against the 33 ms frame
//! budget of a 30 fps camera, and the measured time ratio of a separable layer to the standard
//! layer of the same shape set beside the FLOP ratio `1/C_out + 1/k^2`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sepstream::nn::{InputSpec, LayerKind, LayerSpec, ModelSpec, Network, Size2};
use sepstream::vision::camera::FrameRays;
use sepstream::vision::nalgebra::{Isometry2, Vector2};
use sepstream::vision::rowstream::RowStreamer;
use sepstream::vision::{
    DepthFrame, DepthNoise, DepthPerception, SimDepthCamera, World, WorldParams,
};

const FRAME_BUDGET: f64 = 1.0 / 30.0;

fn spec_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/depth_sectors.toml")
}

fn depth_frame() -> (SimDepthCamera, DepthFrame) {
    let world = World::random(&WorldParams::default(), 1);
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 1);
    let pose = Isometry2::new(Vector2::new(2.0, 3.0), 0.4);
    let f = cam.capture(&world, &pose, 1);
    (cam, f)
}

/// One layer (`kind` = separable2d or conv2d), input `width x c_in`, `c_out` outputs, k x k.
fn one_layer(kind: LayerKind, width: usize, c_in: usize, c_out: usize, k: usize) -> Network {
    let spec = ModelSpec {
        name: format!("{kind}_{c_in}_{c_out}_{k}"),
        description: None,
        weights: None,
        provenance: None,
        labels: vec![],
        input: InputSpec {
            width,
            channels: c_in,
            frame_rate: 3600.0,
        },
        frontend: None,
        decision: None,
        layers: vec![LayerSpec::new(kind)
            .out_channels(c_out)
            .kernel(Size2::Two([k, k]))
            .centered(true)
            .activation(sepstream::nn::Activation::Relu)],
    };
    Network::random(spec, 7).expect("valid bench spec")
}

fn random_frame(width: usize, height: usize, c: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..width * height * c)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

const SHAPES: [(usize, usize, usize); 3] = [(16, 32, 3), (32, 64, 3), (16, 32, 5)];

fn bench(c: &mut Criterion) {
    let (cam, frame) = depth_frame();
    let mut per = DepthPerception::load(&spec_path(), cam.intrinsics()).expect("depth model");
    let mut g = c.benchmark_group("depth_frame");
    g.bench_function("perception_frame_160x120", |b| {
        b.iter(|| black_box(per.process_frame(black_box(&frame), 1, 0.0, 0.0).unwrap()))
    });
    per.begin_frame(1, 0.0);
    let mut v = 0;
    g.bench_function("perception_row_160", |b| {
        b.iter(|| {
            per.push_row(black_box(frame.row(v % 120))).unwrap();
            v += 1;
        })
    });
    let world = World::random(&WorldParams::default(), 1);
    let pose = Isometry2::new(Vector2::new(2.0, 3.0), 0.4);
    let mut out = DepthFrame::new(160, 120, 1);
    let mut rays = FrameRays::default();
    g.bench_function("simulated_camera_frame_160x120", |b| {
        b.iter(|| cam.render_planned(&world, &pose, 1, &mut out, &mut rays))
    });
    g.finish();

    let mut g = c.benchmark_group("separable_vs_standard");
    g.sample_size(10);
    for (ci, co, k) in SHAPES {
        let x = random_frame(160, 120, ci);
        for kind in [LayerKind::Separable2d, LayerKind::Conv2d] {
            let mut rs = RowStreamer::new(Arc::new(one_layer(kind, 160, ci, co, k)));
            let mut o = Vec::new();
            g.bench_function(format!("{kind}_{ci}to{co}_k{k}_frame160x120"), |b| {
                b.iter(|| rs.run_frame(black_box(&x), 120, &mut o).unwrap())
            });
        }
    }
    g.finish();
}

/// Median seconds of `f` over `n` runs after one warm-up.
fn median(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

fn summary() {
    let (cam, frame) = depth_frame();
    let mut per = DepthPerception::load(&spec_path(), cam.intrinsics()).expect("depth model");
    let t_frame = median(51, || {
        black_box(per.process_frame(&frame, 1, 0.0, 0.0).unwrap());
    });
    println!("\n== depth perception (configs/depth_sectors.toml, 160x120, row-streamed) ==");
    println!(
        "per frame {:.3} ms = {:.2}% of the {:.1} ms frame budget; per row {:.2} us (budget per row {:.0} us)",
        t_frame * 1e3,
        100.0 * t_frame / FRAME_BUDGET,
        FRAME_BUDGET * 1e3,
        t_frame / 122.0 * 1e6,
        FRAME_BUDGET / 120.0 * 1e6
    );
    println!("\n== separable vs standard 2D layer, 160x120 frame, streamed row by row ==");
    println!("| C_in | C_out | k | separable ms | standard ms | time ratio | FLOP ratio 1/C_out + 1/k^2 |");
    println!("|---|---|---|---|---|---|---|");
    for (ci, co, k) in SHAPES {
        let x = random_frame(160, 120, ci);
        let mut o = Vec::new();
        let mut t = [0.0; 2];
        for (i, kind) in [LayerKind::Separable2d, LayerKind::Conv2d]
            .into_iter()
            .enumerate()
        {
            let mut rs = RowStreamer::new(Arc::new(one_layer(kind, 160, ci, co, k)));
            t[i] = median(9, || rs.run_frame(&x, 120, &mut o).unwrap());
        }
        let flop = 1.0 / co as f64 + 1.0 / (k * k) as f64;
        println!(
            "| {ci} | {co} | {k} | {:.3} | {:.3} | {:.3} | {:.3} |",
            t[0] * 1e3,
            t[1] * 1e3,
            t[0] / t[1],
            flop
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
}
