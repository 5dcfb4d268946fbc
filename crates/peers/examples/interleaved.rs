//! Streaming sepstream and tract's pulse mode timed hop by hop in one loop, so that both see the same load on a shared machine.
//!
//! `cargo run --release -p sepstream-peers --example interleaved -- [--model NAME|SPEC]
//! [--hops N] [--passes P]`
//!
//! The binary times each column over its own stretch of time; when other work comes and goes,
//! one column's tail can be another's quiet minute. Here every pulse of `time_stride()` input
//! frames is stepped by sepstream, then by tract, and each call is timed on its own; every
//! output frame of both is compared.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use sepstream_nn::bundled::ModelSource;
use sepstream_peers::{max_abs_diff, test_frames, window_frames, TractPulse};

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn summary(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    format!(
        "p50 {:>7.1}  p90 {:>7.1}  p99 {:>7.1}  p99.9 {:>7.1}  max {:>8.1} us",
        quantile(times, 0.5) * 1e6,
        quantile(times, 0.9) * 1e6,
        quantile(times, 0.99) * 1e6,
        quantile(times, 0.999) * 1e6,
        times[times.len() - 1] * 1e6
    )
}

fn main() -> anyhow::Result<()> {
    let (mut model, mut hops, mut passes) = (PathBuf::from("hello_edge_ds_cnn_l"), 2000, 5);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--model" => model = value.into(),
            "--hops" => hops = value.parse().context("--hops")?,
            "--passes" => passes = value.parse().context("--passes")?,
            other => bail!("unknown argument `{other}` (expected --model, --hops, --passes)"),
        }
    }
    if hops == 0 || passes == 0 {
        bail!("--hops and --passes must be at least 1");
    }
    let source = ModelSource::resolve(&model)?;
    let net = source.network()?;
    let (len, stride, out_len) = (
        net.input_shape().len(),
        net.time_stride(),
        net.output_shape().len(),
    );
    let pulses = window_frames(&net).div_ceil(stride) + hops;
    let frames = test_frames(&net, pulses * stride);
    let mut pulse = TractPulse::new(&net, stride)?;
    let delay = pulse.delay();
    let mut state = net.new_state();
    let (mut all_a, mut all_e) = (Vec::new(), Vec::new());
    let mut worst = 0.0f32;
    println!(
        "{}: {pulses} pulses of {stride} input frames per pass, {passes} passes; load average {}",
        source.display_name(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    for pass in 0..passes {
        state.reset();
        pulse.reset()?;
        let (mut ta, mut te) = (Vec::with_capacity(pulses), Vec::with_capacity(pulses));
        let mut outs = Vec::with_capacity(pulses * out_len);
        let mut produced = 0usize;
        for (p, x) in frames.chunks_exact(stride * len).enumerate() {
            // Pulse p holds input frame p * stride, on which the stream emits output frame p.
            let t = Instant::now();
            for f in x.chunks_exact(len) {
                if let Some(y) = black_box(net.step(&mut state, black_box(f))) {
                    outs.extend_from_slice(y);
                }
            }
            ta.push(t.elapsed().as_secs_f64());
            if outs.len() != (p + 1) * out_len {
                bail!("pulse {p} did not give exactly one output frame");
            }
            let t = Instant::now();
            let y = black_box(pulse.step(black_box(x))?);
            te.push(t.elapsed().as_secs_f64());
            for frame in y.chunks_exact(out_len) {
                if let Some(j) = produced.checked_sub(delay) {
                    worst = worst.max(max_abs_diff(frame, &outs[j * out_len..][..out_len]));
                }
                produced += 1;
            }
        }
        all_a.extend_from_slice(&ta);
        all_e.extend_from_slice(&te);
        println!("pass {pass}  (a) sepstream step  {}", summary(&mut ta));
        println!("pass {pass}  (e) tract pulse     {}", summary(&mut te));
    }
    let (a, e) = (summary(&mut all_a), summary(&mut all_e));
    println!("all     (a) sepstream step  {a}");
    println!("all     (e) tract pulse     {e}");
    println!(
        "median (e)/(a) {:.2}x, p99 (e)/(a) {:.2}x; max |(e) - (a)| over every output {worst:.1e}",
        quantile(&all_e, 0.5) / quantile(&all_a, 0.5),
        quantile(&all_e, 0.99) / quantile(&all_a, 0.99)
    );
    Ok(())
}
