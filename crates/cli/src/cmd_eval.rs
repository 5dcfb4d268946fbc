//! `sepstream eval`: runs the streaming engine (sepstream-nn `step` over sepstream-audio feature
//! frames) over every clip of a Speech Commands-layout folder, or over one long stream made of them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sepstream_nn::Network;
use sepstream_train::evaluate;

/// Options of `sepstream eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Speech Commands-layout folder (one folder per label).
    #[arg(long)]
    data: PathBuf,
    /// Model spec (with its weights).
    #[arg(long, default_value = "configs/kws.toml")]
    model: PathBuf,
    /// Concatenate the clips with 1-2 s background gaps into one stream and run the keyword detector.
    #[arg(long)]
    stream: bool,
    /// Only the validation speakers of the training split (`--seed`, `--val-percent`).
    #[arg(long)]
    val_split: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 20)]
    val_percent: u32,
    /// Use at most this many clips (an even spread over the folder).
    #[arg(long)]
    limit: Option<usize>,
    /// With --stream: the decision threshold instead of the spec's `[decision] threshold`.
    #[arg(long)]
    threshold: Option<f32>,
    /// With --stream: the posterior smoothing window (s) instead of the spec's.
    #[arg(long)]
    smoothing: Option<f64>,
    /// Per clip: seconds of silence after each clip before its posterior is read, instead of
    /// the spec's `[decision] clip_tail` (0 = at the clip's last sample).
    #[arg(long, conflicts_with = "stream")]
    clip_tail: Option<f64>,
    /// Per clip: one fresh window of the spec's `[decision] window` seconds (zero padded or
    /// cut), run offline with zero padding on both sides in time, as a graph trained on fixed
    /// windows computes it, instead of the streaming engine.
    #[arg(long, conflicts_with_all = ["stream", "clip_tail"])]
    windowed: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut clips = evaluate::clips_of(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    let net = Network::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    if args.val_split {
        clips = sepstream_train::dataset::split_by_speaker(&clips, args.seed, args.val_percent).1;
    }
    if let Some(m) = args.limit {
        let k = clips.len().div_ceil(m.max(1)).max(1);
        clips = clips.into_iter().step_by(k).collect();
    }
    if args.stream {
        let (fe, mut decision) = evaluate::configs(&net)?;
        if let Some(t) = args.threshold {
            decision.threshold = t;
        }
        if let Some(t) = args.smoothing {
            decision.smoothing = t;
        }
        decision
            .validate()
            .context("--threshold/--smoothing out of range")?;
        let (samples, words) = evaluate::build_stream(&clips, fe.sample_rate, args.seed)?;
        let r = evaluate::eval_stream(&net, &decision, &samples, fe.sample_rate, &words)?;
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "decision: smoothing {} s, threshold {}, refractory {} s",
                decision.smoothing, decision.threshold, decision.refractory
            );
            println!(
                "stream: {:.3} h, {} keywords among {} words",
                r.hours,
                r.keywords,
                words.len()
            );
            println!(
                "detection rate: {:.4} ({} of {})",
                r.detection_rate, r.detected, r.keywords
            );
            println!(
                "false accepts per hour: {:.2} ({} in {:.3} h)",
                r.false_accepts_per_hour, r.false_accepts, r.hours
            );
            println!(
                "median delay: {:.3} s (event time minus end of word)",
                r.median_delay
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (_, mut decision) = evaluate::configs(&net)?;
    if let Some(t) = args.clip_tail {
        decision.clip_tail = t;
    }
    decision.validate().context("--clip-tail out of range")?;
    let tail = decision.clip_tail;
    let mode = if args.windowed {
        if decision.window <= 0.0 {
            anyhow::bail!(
                "{}: --windowed needs the window the model was made for (`[decision] window`, \
                 in seconds)",
                args.model.display()
            );
        }
        evaluate::ClipMode::Window {
            seconds: decision.window,
        }
    } else {
        evaluate::ClipMode::Stream { tail }
    };
    let r = evaluate::eval_clips_in(&net, &clips, mode)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("accuracy: {:.4} ({} clips)", r.accuracy, r.clips);
        match mode {
            evaluate::ClipMode::Stream { tail } => {
                println!("streaming: each clip's posterior read {tail} s after its end (clip_tail)")
            }
            evaluate::ClipMode::Window { seconds } => {
                println!("windowed: each clip one fresh {seconds} s window")
            }
        }
        println!("{:>10} {:>9} {:>9}", "label", "precision", "recall");
        for (i, l) in r.labels.iter().enumerate() {
            println!("{:>10} {:>9.4} {:>9.4}", l, r.precision[i], r.recall[i]);
        }
        println!("confusion (rows: true, columns: predicted):");
        print!("{:>10}", "");
        for l in &r.labels {
            print!(" {:>5}", &l[..l.len().min(5)]);
        }
        println!();
        for (i, row) in r.confusion.iter().enumerate() {
            print!("{:>10}", r.labels[i]);
            for v in row {
                print!(" {v:>5}");
            }
            println!();
        }
    }
    for (p, e) in &r.errors {
        eprintln!("error: {p}: {e}");
    }
    Ok(if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
