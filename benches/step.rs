//! One streaming DS-CNN hop against one offline forward of the window it replaces.
//!
//! `cargo bench --bench step` measures, for configs/ds_cnn_s.toml with random weights:
//! - `step/stream_hop`: one `Network::step` (one 20 ms input frame) on a live state, averaged
//!   over consecutive hops (the stride-2 first layer makes every other hop cheap, so the mean
//!   is the honest per-hop cost; the harness `sepstream bench` reports the tail);
//! - `step/offline_forward_window`: `Network::forward` over `receptive_field()` frames, the
//!   ~1.5 s of input that determines one output, i.e. what a non-streaming system recomputes per
//!   hop with the plain oracle;
//! - `step/offline_batch_window`: the same window through the fast streaming kernels from a
//!   zero state (a reasonable production batch implementation: same packed kernels, no reuse
//!   of previous hops).
//!
//! - `chain/frontend_hop`: one 20 ms hop of 16 kHz samples through `FeatureStream` (10 MFCC);
//! - `chain/samples_to_decision_hop`: the same hop, then `Network::step` on the frame it yields,
//!   then the decision (argmax over the posteriors; the keyword detector is not in yet).
//!
//! After the run it prints both ratios from this run's criterion estimates, then the tail of a
//! hop from the deadline harness `sepstream bench` uses (`sepstream_pipeline::deadline`): one
//! minute of synthetic audio through front end, network and decision, p50 / p99 / p99.9 / max
//! against the hop deadline and the bytes allocated per hop.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::SystemTime;

use sepstream_audio::{FeatureStream, FrontendConfig};
use sepstream_nn::{ModelSpec, Network};
use sepstream_pipeline::deadline::{measure_hops, AllocCount, AllocProbe, HopRun, Percentiles};
use sepstream_testkit::{thread_stats, CountingAlloc};

/// Counts allocations per thread, for the deadline figures' bytes per hop.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Deterministic MFCC-like input frames.
fn frames(n: usize, len: usize) -> Vec<f32> {
    let mut s: u32 = 0x9e37_79b9;
    (0..n * len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

fn ds_cnn() -> Network {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ds_cnn_s.toml");
    let spec = ModelSpec::load(&path).expect("configs/ds_cnn_s.toml");
    Network::random(spec, 7).expect("random DS-CNN")
}

fn bench_step(c: &mut criterion::Criterion) {
    let net = ds_cnn();
    let len = net.input_shape().len();
    let window = net.receptive_field();
    let n_frames = 512;
    let input = frames(n_frames, len);
    let win_input = &input[..window * len];

    let mut g = c.benchmark_group("step");
    let mut state = net.new_state();
    let mut i = 0usize;
    g.bench_function("stream_hop", |b| {
        b.iter(|| {
            let f = &input[(i % n_frames) * len..][..len];
            i += 1;
            black_box(net.step(&mut state, black_box(f)).map(|o| o[0]))
        })
    });
    g.bench_function("offline_forward_window", |b| {
        b.iter(|| black_box(net.forward(black_box(win_input), window)))
    });
    let mut batch_state = net.new_state();
    g.bench_function("offline_batch_window", |b| {
        b.iter(|| {
            batch_state.reset();
            let mut last = 0.0;
            net.step_many(&mut batch_state, black_box(win_input), |o| last = o[0]);
            black_box(last)
        })
    });
    g.finish();
}

fn bench_chain(c: &mut criterion::Criterion) {
    let net = ds_cnn();
    let cfg = FrontendConfig {
        n_mfcc: Some(net.input_shape().len()),
        ..FrontendConfig::default()
    };
    let hop = cfg.hop;
    let mut s: u32 = 1;
    let audio: Vec<f32> = (0..cfg.sample_rate as usize * 4)
        .map(|n| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            0.3 * (n as f32 * 0.05).sin() + 0.05 * ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
        })
        .collect();
    let hops = audio.len() / hop;
    let mut g = c.benchmark_group("chain");
    let mut fs = FeatureStream::new(&cfg, cfg.sample_rate).expect("front end");
    let mut i = 0usize;
    g.bench_function("frontend_hop", |b| {
        b.iter(|| {
            let block = &audio[(i % hops) * hop..][..hop];
            i += 1;
            let mut sum = 0.0;
            fs.push(black_box(block), |_, f| sum += f[0]);
            black_box(sum)
        })
    });
    let mut fs = FeatureStream::new(&cfg, cfg.sample_rate).expect("front end");
    let mut state = net.new_state();
    let mut i = 0usize;
    g.bench_function("samples_to_decision_hop", |b| {
        b.iter(|| {
            let block = &audio[(i % hops) * hop..][..hop];
            i += 1;
            let mut decision = usize::MAX;
            fs.push(black_box(block), |_, f| {
                if let Some(post) = net.step(&mut state, f) {
                    decision = post
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map_or(usize::MAX, |(k, _)| k);
                }
            });
            black_box(decision)
        })
    });
    g.finish();
}

fn report(since: SystemTime) {
    let net = ds_cnn();
    let get = |id| common::estimate_ns("step", id, since);
    println!(
        "\nDS-CNN-S (configs/ds_cnn_s.toml, random weights): one hop = 1 input frame of {} values at {} frames/s; \
         offline window = receptive_field() = {} frames",
        net.input_shape().len(),
        net.spec().input.frame_rate,
        net.receptive_field()
    );
    let Some(hop) = get("stream_hop") else {
        println!("(stream_hop not measured in this run: no ratios)");
        return;
    };
    println!("  stream hop (mean)            {:>12}", common::fmt_ns(hop));
    for (id, what) in [
        ("offline_forward_window", "Network::forward over the window"),
        (
            "offline_batch_window",
            "streaming kernels over the window from zero state",
        ),
    ] {
        if let Some(t) = get(id) {
            println!(
                "  {id:<28} {:>12}   ratio {:>7.1}x  ({what})",
                common::fmt_ns(t),
                t / hop
            );
        }
    }
    for id in ["frontend_hop", "samples_to_decision_hop"] {
        if let Some(t) = common::estimate_ns("chain", id, since) {
            println!(
                "  chain/{id:<24} {:>12}   ({:.2}% of the 20 ms hop)",
                common::fmt_ns(t),
                t / 2e5
            );
        }
    }
}

/// The per-hop tail of the whole chain from the deadline harness, as `sepstream bench` measures it.
fn deadline_figures() {
    let net = ds_cnn();
    let run = HopRun {
        audio_seconds: 60.0,
        ..HopRun::default()
    };
    let probe: AllocProbe = || {
        let s = thread_stats();
        AllocCount {
            allocations: s.allocations,
            bytes: s.bytes,
        }
    };
    let h = match measure_hops(&net, &run, Some(probe)) {
        Ok(h) => h,
        Err(e) => {
            println!("deadline harness: {e}");
            return;
        }
    };
    println!(
        "\ndeadline harness (sepstream_pipeline::deadline): {:.0} s of audio, {} hops of {} samples against {:.0} us, as fast as possible",
        h.audio_seconds, h.hops, h.hop_samples, h.hop_deadline_us
    );
    let row = |name: &str, p: &Percentiles| {
        println!(
            "  {name:<12} p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us  max {:>8.1} us",
            p.p50_us, p.p99_us, p.p999_us, p.max_us
        )
    };
    row("hop compute", &h.compute);
    println!(
        "  deadline misses {}, real-time factor {:.5}, bytes allocated per hop {:.3}",
        h.deadline_misses,
        h.real_time_factor,
        h.bytes_allocated_per_hop.unwrap_or(f64::NAN)
    );
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion();
    bench_step(&mut c);
    bench_chain(&mut c);
    c.final_summary();
    report(since);
    // Only in a measuring run (`cargo bench`), not when `cargo test --benches` runs each once.
    if std::env::args().any(|a| a == "--bench") {
        deadline_figures();
    }
}
