//! `sepstream-peers`: the DS-CNN by sepstream, candle and tract, same weights, in one run.
//!
//! Prints per-hop times, their ratios to streaming and every column's output agreement.
//!
//! `cargo run --release -p sepstream-peers -- [--model NAME|SPEC] [--hops N] [--seconds S]
//! [--onnx OUT.onnx] [--json]`
//!
//! `--model` takes a bundled model's name (`hello_edge_ds_cnn_l`) or a spec file; the network
//! has the spec's weights, or random weights (seed 7) when the spec names no weights file (the
//! default, `configs/ds_cnn_s.toml`). candle and tract get the same weights, copied from the
//! network.
//!
//! A hop is one output frame: `time_stride()` input frames (two 20 ms frames for the DS-CNN).
//! Hop `k` ends on input frame `e_k`; its output is the one sepstream's `step` returns on
//! frame `e_k`. The whole-window columns run over the `window_frames()` frames ending at `e_k`;
//! the streaming columns take the stream's frames as they come. Every hop of every column is
//! timed on its own, and every output is checked against the streaming one.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use sepstream_nn::bundled::ModelSource;
use sepstream_nn::{ModelSpec, Network};
use sepstream_peers::{
    agreement, max_abs_diff, save_onnx, test_frames, to_onnx, window_frames, without_softmax,
    CandleNet, TimeAxis, TractNet, TractPulse,
};

/// Largest |difference| a peer's output may have from sepstream's streaming output (on the
/// logits: this times their largest magnitude, when that is over 1).
const TOLERANCE: f32 = 1e-3;

/// The speed-up over `Network::forward` streaming is held to.
const REQUIRED_SPEEDUP: f64 = 25.0;

/// The seed of the random weights of a spec that names no weights file.
const SEED: u64 = 7;

/// Hops of the untimed check on the logits.
const LOGIT_HOPS: usize = 100;

/// One column of the table: per-hop seconds and the largest output difference.
struct Column {
    key: &'static str,
    name: String,
    times: Vec<f64>,
    max_diff: f32,
    hops_checked: usize,
    peer: bool,
}

impl Column {
    fn new(key: &'static str, name: impl Into<String>, peer: bool) -> Self {
        Self {
            key,
            name: name.into(),
            times: Vec::new(),
            max_diff: 0.0,
            hops_checked: 0,
            peer,
        }
    }

    fn check(&mut self, got: &[f32], want: &[f32]) {
        self.max_diff = self.max_diff.max(max_abs_diff(got, want));
        self.hops_checked += 1;
    }

    /// (median, p99) in seconds.
    fn stats(&self) -> (f64, f64) {
        let mut t = self.times.clone();
        t.sort_by(f64::total_cmp);
        let q = |p: f64| t[((p * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1];
        (q(0.5), q(0.99))
    }
}

/// Runs `pass` (one pass over every hop, pushing into `col`) until `seconds` of hops are
/// timed, at least once.
fn passes(
    col: &mut Column,
    seconds: f64,
    mut pass: impl FnMut(&mut Column) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        pass(col)?;
        if start.elapsed().as_secs_f64() >= seconds {
            return Ok(());
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Args {
    model: PathBuf,
    hops: usize,
    seconds: f64,
    onnx_out: Option<PathBuf>,
    json: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        model: PathBuf::from("configs/ds_cnn_s.toml"),
        hops: 1000,
        seconds: 2.0,
        onnx_out: None,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--model" => a.model = value("a bundled model's name or a spec path")?.into(),
            "--hops" => a.hops = value("a count")?.parse().context("--hops")?,
            "--seconds" => a.seconds = value("seconds")?.parse().context("--seconds")?,
            "--onnx" => a.onnx_out = Some(value("a path")?.into()),
            "--json" => a.json = true,
            other => bail!(
                "unknown argument `{other}` (expected --model, --hops, --seconds, --onnx, --json)"
            ),
        }
    }
    if a.hops == 0 {
        bail!("--hops must be at least 1");
    }
    Ok(a)
}

/// The network `--model` names, how to name it, and where its weights came from.
fn load_model(arg: &Path) -> anyhow::Result<(Network, String, String)> {
    let source = ModelSource::resolve(arg)?;
    let name = source.display_name();
    let loaded = match &source {
        ModelSource::File(path) => {
            let spec =
                ModelSpec::load(path).with_context(|| format!("loading {}", path.display()))?;
            match spec.weights_path(path) {
                Some(w) => (
                    Network::load(path).with_context(|| format!("loading {}", path.display()))?,
                    w.display().to_string(),
                ),
                None => (
                    Network::random(spec, SEED)?,
                    format!("random (seed {SEED}; the spec names no weights file)"),
                ),
            }
        }
        ModelSource::Bundled(m) => (m.network()?, format!("the bundled {}.safetensors", m.name)),
    };
    Ok((loaded.0, name, loaded.1))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (net, model_name, weights) = load_model(&args.model)?;
    let len = net.input_shape().len();
    let out_len = net.output_shape().len();
    let stride = net.time_stride();
    let window = window_frames(&net);
    let hops = args.hops;
    let n_frames = window + stride * hops;
    let frames = test_frames(&net, n_frames);
    // Hop k: input frames [first_k, end_k) are new; end_k - 1 is the newest. The first
    // window - stride frames are the stream's warm-up before hop 0.
    let warm = window - stride;
    let hop_frames = |k: usize| &frames[(warm + k * stride) * len..(warm + (k + 1) * stride) * len];
    let hop_window = |k: usize| &frames[k * stride * len..(k * stride + window) * len];

    if let Some(p) = &args.onnx_out {
        save_onnx(&to_onnx(&net, TimeAxis::Window(window))?, p)?;
        save_onnx(
            &to_onnx(&net, TimeAxis::Stream)?,
            &p.with_extension("stream.onnx"),
        )?;
    }

    // (a) sepstream streaming: the reference output of every hop.
    let mut a = Column::new("a", "(a) sepstream streaming: Network::step", false);
    let mut reference = vec![0.0f32; hops * out_len];
    let mut state = net.new_state();
    let mut first_pass = true;
    passes(&mut a, args.seconds, |col| {
        state.reset();
        net.step_many(&mut state, &frames[..warm * len], |_| {});
        for k in 0..hops {
            let hop = hop_frames(k);
            let t = Instant::now();
            let (rest, newest) = hop.split_at(hop.len() - len);
            for f in rest.chunks_exact(len) {
                black_box(net.step(&mut state, black_box(f)).is_some());
            }
            let out = black_box(net.step(&mut state, black_box(newest)));
            col.times.push(t.elapsed().as_secs_f64());
            let out = out.context("the hop's last frame produced no output")?;
            if first_pass {
                reference[k * out_len..][..out_len].copy_from_slice(out);
            } else {
                col.check(out, &reference[k * out_len..][..out_len]);
            }
        }
        first_pass = false;
        Ok(())
    })?;
    let want = |k: usize| &reference[k * out_len..][..out_len];
    // How much the reference moves: a check at TOLERANCE means little if it barely does.
    let top: Vec<f32> = (0..hops)
        .map(|k| want(k).iter().copied().fold(0.0, f32::max))
        .collect();
    let spread = (
        top.iter().copied().fold(f32::INFINITY, f32::min),
        top.iter().copied().fold(0.0, f32::max),
    );

    // (b) sepstream offline over the window.
    let mut b = Column::new(
        "b",
        "(b) sepstream offline: Network::forward over window",
        false,
    );
    passes(&mut b, args.seconds, |col| {
        for k in 0..hops {
            let t = Instant::now();
            let y = black_box(net.forward(black_box(hop_window(k)), window));
            col.times.push(t.elapsed().as_secs_f64());
            col.check(&y[y.len() - out_len..], want(k));
        }
        Ok(())
    })?;

    // (b') the streaming kernels over the window from a zero state: separates the gain of
    // streaming from the gain of the kernels.
    let mut b2 = Column::new(
        "b'",
        "(b') sepstream step_many over window, zero state",
        false,
    );
    let mut bstate = net.new_state();
    let mut last = vec![0.0f32; out_len];
    passes(&mut b2, args.seconds, |col| {
        for k in 0..hops {
            let t = Instant::now();
            bstate.reset();
            net.step_many(&mut bstate, black_box(hop_window(k)), |o| {
                last.copy_from_slice(o)
            });
            black_box(&last);
            col.times.push(t.elapsed().as_secs_f64());
            col.check(&last, want(k));
        }
        Ok(())
    })?;

    // (c) candle over the window.
    let candle = CandleNet::new(&net)?;
    let mut c = Column::new(
        "c",
        format!(
            "(c) candle 0.11 over window: conv2d ({} thr)",
            candle_core::utils::get_num_threads()
        ),
        true,
    );
    passes(&mut c, args.seconds, |col| {
        for k in 0..hops {
            let t = Instant::now();
            let y = black_box(candle.forward_window(black_box(hop_window(k)), window)?);
            col.times.push(t.elapsed().as_secs_f64());
            col.check(&y, want(k));
        }
        Ok(())
    })?;

    // (d) tract over the window.
    let mut tract = TractNet::new(&net, window)?;
    let mut d = Column::new("d", "(d) tract 0.23 over window: ONNX, optimized", true);
    passes(&mut d, args.seconds, |col| {
        for k in 0..hops {
            let t = Instant::now();
            let y = black_box(tract.forward_window(black_box(hop_window(k)))?);
            col.times.push(t.elapsed().as_secs_f64());
            col.check(&y, want(k));
        }
        Ok(())
    })?;

    // (e) tract pulse: one pulse of `stride` frames per hop, from the start of the stream.
    let mut columns = vec![a, b, b2, c, d];
    let pulse_note = match TractPulse::new(&net, stride) {
        Err(e) => format!("(e) tract pulse mode: could not be built: {e}"),
        Ok(mut pulse) => {
            let delay = pulse.delay();
            let mut e = Column::new("e", "(e) tract 0.23 pulse mode: 1 pulse per hop", true);
            passes(&mut e, args.seconds, |col| {
                pulse.reset()?;
                let mut produced = 0usize; // output frames out of the pulsed model so far
                for p in 0..n_frames / stride {
                    let x = &frames[p * stride * len..(p + 1) * stride * len];
                    let t = Instant::now();
                    let y = black_box(pulse.step(black_box(x))?);
                    col.times.push(t.elapsed().as_secs_f64());
                    for frame in y.chunks_exact(out_len) {
                        // Output frame j's newest input frame is j * stride; hop k's
                        // is window - 1 + k * stride.
                        let newest = produced.checked_sub(delay).map(|j| j * stride);
                        if let Some(d) = newest.and_then(|n| n.checked_sub(window - 1)) {
                            if d % stride == 0 && d / stride < hops {
                                col.check(frame, want(d / stride));
                            }
                        }
                        produced += 1;
                    }
                }
                Ok(())
            })?;
            columns.push(e);
            format!(
                "(e) tract pulse mode: pulse = {stride} input frames, output delay = {delay} output frames ({} input frames)",
                delay * stride
            )
        }
    };

    let logit_hops = hops.min(LOGIT_HOPS);
    let logits = agreement(&without_softmax(&net)?, &frames, logit_hops)?;

    let (a_med, a_p99) = columns[0].stats();
    let (b_med, _) = columns[1].stats();
    let speedup = b_med / a_med;
    // The logits of trained weights are tens, not ones: the tolerance scales with them.
    let logit_scale = logits
        .reference_range
        .0
        .abs()
        .max(logits.reference_range.1.abs());
    let logit_tolerance = TOLERANCE * logit_scale.max(1.0);
    let slowest_peer_ok = columns
        .iter()
        .filter(|c| c.peer)
        .all(|c| c.stats().0 > a_med && c.stats().1 > a_p99);
    let bad: Vec<String> = columns
        .iter()
        .filter(|c| c.max_diff > TOLERANCE || (c.hops_checked == 0 && c.key != "a"))
        .map(|c| {
            format!(
                "{} (max |diff| {:.2e}, {} hops checked)",
                c.name, c.max_diff, c.hops_checked
            )
        })
        .chain(
            logits
                .columns
                .iter()
                .filter(|(_, d)| *d > logit_tolerance)
                .map(|(k, d)| format!("({k}) on the logits (max |diff| {d:.2e})")),
        )
        .chain(
            logits
                .pulse_error
                .iter()
                .filter(|_| columns.iter().any(|c| c.key == "e"))
                .map(|e| format!("(e) on the logits: {e}")),
        )
        .collect();

    if args.json {
        let rows: Vec<_> = columns
            .iter()
            .map(|c| {
                let (med, p99) = c.stats();
                serde_json::json!({
                    "column": c.key, "name": c.name, "hops_timed": c.times.len(),
                    "median_seconds": med, "p99_seconds": p99,
                    "median_ratio_to_a": med / a_med, "p99_ratio_to_a": p99 / a_p99,
                    "max_abs_diff_vs_a": c.max_diff, "hops_checked": c.hops_checked,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "model": model_name, "weights": weights,
            "window_frames": window, "receptive_field": net.receptive_field(),
            "frames_per_hop": stride, "load_average": load_average(),
            "rows": rows, "tract_pulse": pulse_note, "top_posterior_range": [spread.0, spread.1],
            "max_abs_logit_diff_vs_a": logits.columns.iter().map(|(k, d)| (k.to_string(), *d)).collect::<std::collections::BTreeMap<_, _>>(),
            "logit_range": [logits.reference_range.0, logits.reference_range.1],
            "logit_hops": logit_hops,
            "a_speedup_over_b": speedup, "a_faster_than_every_peer": slowest_peer_ok,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{model_name}: weights {weights}; every column the same weights");
        println!(
            "hop = 1 output frame = {stride} input frames; window = {window} frames (receptive field {}); {hops} hops per pass; load average {}",
            net.receptive_field(),
            load_average()
        );
        println!(
            "{:<52} {:>7} {:>10} {:>10} {:>9} {:>9} {:>10}",
            "per hop", "hops", "median", "p99", "med/(a)", "p99/(a)", "max|diff|"
        );
        for c in &columns {
            let (med, p99) = c.stats();
            println!(
                "{:<52} {:>7} {:>7.2} us {:>7.2} us {:>8.1}x {:>8.1}x {:>10.1e}",
                c.name,
                c.times.len(),
                med * 1e6,
                p99 * 1e6,
                med / a_med,
                p99 / a_p99,
                c.max_diff
            );
        }
        println!("{pulse_note}");
        let l: Vec<String> = logits
            .columns
            .iter()
            .map(|(k, d)| format!("({k}) {d:.1e}"))
            .collect();
        println!(
            "same weights without the softmax, max |logit - (a)'s| over {logit_hops} hops: {} ((a)'s logits range over [{:.2}, {:.2}])",
            l.join(", "),
            logits.reference_range.0,
            logits.reference_range.1
        );
        println!(
            "(a)'s top posterior per hop ranges over [{:.3}, {:.3}] ({out_len} classes)",
            spread.0, spread.1
        );
        println!(
            "max|diff|: largest |output - (a)'s output| over every hop checked; (a)'s own is over its repeat passes"
        );
        println!(
            "(a) vs (b): {speedup:.1}x faster at the median (>= {REQUIRED_SPEEDUP}x: {})",
            if speedup >= REQUIRED_SPEEDUP {
                "yes"
            } else {
                "NO"
            }
        );
        println!(
            "(a) faster than every peer at the median and p99: {}",
            if slowest_peer_ok { "yes" } else { "NO" }
        );
    }
    if !bad.is_empty() {
        bail!(
            "outputs disagree with sepstream's beyond {TOLERANCE:e} (logits: {logit_tolerance:.1e}): {}",
            bad.join("; ")
        );
    }
    Ok(())
}
