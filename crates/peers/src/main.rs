//! `sepstream-peers`: the DS-CNN run by sepstream (streaming and offline), candle and tract,
//! same model and weights, in one run; prints per-hop times, the ratios and the output
//! agreement. `cargo run --release -p sepstream-peers -- [--model SPEC] [--onnx OUT] [--json]`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use sepstream_nn::{ModelSpec, Network};
use sepstream_peers::{save_onnx, to_onnx, CandleNet, TractNet};

/// Mean seconds per call of `f`: 7 rounds of enough calls for ~0.3 s each, the median round.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < 0.1 {
        f();
        n += 1;
    }
    let per_round = ((0.3 / (t.elapsed().as_secs_f64() / n as f64)) as u64).max(1);
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed().as_secs_f64() / per_round as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn main() -> anyhow::Result<()> {
    let mut model = PathBuf::from("configs/ds_cnn_s.toml");
    let mut onnx_out: Option<PathBuf> = None;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().context("--model needs a path")?.into(),
            "--onnx" => onnx_out = Some(args.next().context("--onnx needs a path")?.into()),
            "--json" => json = true,
            "--bench" => {} // passed by `cargo bench`
            other => anyhow::bail!("unknown argument `{other}` (expected --model, --onnx, --json)"),
        }
    }
    let spec = ModelSpec::load(&model).with_context(|| format!("loading {}", model.display()))?;
    let net = Network::random(spec, 7)?;
    let len = net.input_shape().len();
    let window = net.receptive_field();
    let n_frames = 1000;
    let mut s: u32 = 0x9e37_79b9;
    let frames: Vec<f32> = (0..n_frames * len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        })
        .collect();
    let win = &frames[..window * len];

    // Reference output: the last output frame the window determines.
    let offline = net.forward(win, window);
    let out_len = net.output_shape().len();
    let reference = offline[offline.len() - out_len..].to_vec();

    let candle = CandleNet::new(&net)?;
    let tract = TractNet::new(&net, window)?;
    if let Some(p) = &onnx_out {
        save_onnx(&to_onnx(&net, window)?, p)?;
    }
    let candle_out = candle.forward_window(win, window)?;
    let tract_out = tract.forward_window(win)?;

    // (a) streaming: one hop = one Network::step, averaged over consecutive hops.
    let mut state = net.new_state();
    let mut i = 0usize;
    let stream = time_per_call(|| {
        let f = &frames[(i % n_frames) * len..][..len];
        i += 1;
        black_box(net.step(&mut state, black_box(f)).map(|o| o[0]));
    });
    // (b) offline oracle and (b') streaming kernels from zero state, over the window per hop.
    let forward = time_per_call(|| {
        black_box(net.forward(black_box(win), window));
    });
    let mut bstate = net.new_state();
    let batch = time_per_call(|| {
        bstate.reset();
        let mut last = 0.0;
        net.step_many(&mut bstate, black_box(win), |o| last = o[0]);
        black_box(last);
    });
    // (c) candle, (d) tract: the window per hop.
    let candle_t = time_per_call(|| {
        black_box(candle.forward_window(black_box(win), window).ok());
    });
    let tract_t = time_per_call(|| {
        black_box(tract.forward_window(black_box(win)).ok());
    });

    let rows = [
        ("sepstream streaming (1 step per hop)", stream, 0.0f32),
        (
            "sepstream offline: Network::forward over window",
            forward,
            0.0,
        ),
        ("sepstream batch: streaming kernels over window", batch, 0.0),
        (
            "candle 0.11 over window (conv2d, NCHW)",
            candle_t,
            max_diff(&candle_out, &reference),
        ),
        (
            "tract 0.23 over window (ONNX export, optimized)",
            tract_t,
            max_diff(&tract_out, &reference),
        ),
    ];
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, t, d)| serde_json::json!({"name": n, "seconds_per_hop": t, "ratio_to_streaming": t / stream, "max_abs_diff_vs_offline": d}))
            .collect();
        let doc = serde_json::json!({"model": model.display().to_string(), "window_frames": window, "rows": v,
            "tract_pulse": "not attempted: tract-pulse is not a dependency"});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "DS-CNN {} (random weights, seed 7); window = receptive_field() = {window} frames; hop = 1 frame",
            model.display()
        );
        println!(
            "{:<50} {:>12} {:>14} {:>12}",
            "per hop", "time", "x streaming", "max |diff|"
        );
        for (n, t, d) in rows {
            println!(
                "{n:<50} {:>9.2} us {:>13.1}x {:>12.2e}",
                t * 1e6,
                t / stream,
                d
            );
        }
        println!(
            "(e) tract pulse (streaming) mode: not attempted (tract-pulse is not a dependency)"
        );
    }
    Ok(())
}
