//! `sepstream eval`: runs the streaming engine (sepstream-nn `step` over sepstream-audio feature
//! frames) over every clip of a Speech Commands-layout folder, or over one long stream made of them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sepstream_kws::ModelSettings;
use sepstream_train::evaluate;

/// Options of `sepstream eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Speech Commands-layout folder (one folder per label).
    #[arg(long, required_unless_present = "false_accepts")]
    data: Option<PathBuf>,
    /// Events per hour over long recordings in which nobody addresses the device (every audio
    /// file under DIR, WAV/FLAC/MP3/Ogg): each event is a false accept, listed with its file and
    /// times (the first 20 in text, all with --json). With --val-split, only the held-out
    /// speakers (the file name up to its first `-` or `_`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["data", "stream", "clip_tail"])]
    false_accepts: Option<PathBuf>,
    /// With --stream: put the keyword clips into this continuous background (every audio file
    /// under DIR end to end; repeat for speech and noise) at 5-20 dB SNR, instead of silence
    /// gaps between them. With --val-split, only the held-out speakers' recordings of each
    /// folder (all of a folder with none, e.g. noise).
    #[arg(long, value_name = "DIR", requires = "stream")]
    background: Vec<PathBuf>,
    /// With --background: the range of signal-to-noise ratios (dB) the words are mixed at.
    #[arg(long, value_name = "LOW:HIGH", default_value = "5:20", value_parser = parse_snr, requires = "background", allow_hyphen_values = true)]
    snr: (f32, f32),
    /// Model: a spec file (with its weights) or a bundled model's name (`sepstream models`);
    /// default: the bundled keyword model `kws`.
    #[arg(long)]
    model: Option<PathBuf>,
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
    #[command(flatten)]
    confirm: crate::model_arg::ConfirmArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn print_decision(d: &sepstream_audio::DecisionConfig) {
    println!(
        "decision: smoothing {} s, threshold {}, refractory {} s",
        d.smoothing, d.threshold, d.refractory
    );
}

/// Names each file that could not be read on stderr; exit 1 when there was any.
fn report_errors(errors: &[(String, String)]) -> ExitCode {
    for (p, e) in errors {
        eprintln!("error: {p}: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// "LOW:HIGH" in dB, LOW < HIGH.
fn parse_snr(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected LOW:HIGH in dB, e.g. 5:20"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f32>()
            .map_err(|_| format!("{v:?} is not a number of dB"))
    };
    let (lo, hi) = (num(a)?, num(b)?);
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!("{s:?}: LOW must be below HIGH"));
    }
    Ok((lo, hi))
}

/// The keyword model of `--model` with the check of `--confirm`.
fn keyword_model(args: &Args) -> anyhow::Result<sepstream_kws::KwsModel> {
    let (mut model, _) = crate::model_arg::keyword_model(args.model.as_deref())?;
    args.confirm.apply(&mut model)?;
    Ok(model)
}

/// The second-stage check and how many events it turned down, if there is one.
fn print_confirm(model: &sepstream_kws::KwsModel, rejected: usize) {
    if let Some(line) = crate::model_arg::describe_confirm(model) {
        println!("{line}");
        println!("events turned down by the check: {rejected}");
    }
}

/// The spec's decision settings with --threshold/--smoothing applied and checked.
fn decision_of(
    net: &sepstream_nn::Network,
    args: &Args,
) -> anyhow::Result<sepstream_audio::DecisionConfig> {
    let mut decision = ModelSettings::from_spec(net.spec())?.decision;
    if let Some(t) = args.threshold {
        decision.threshold = t;
    }
    if let Some(t) = args.smoothing {
        decision.smoothing = t;
    }
    decision
        .validate()
        .context("--threshold/--smoothing out of range")?;
    Ok(decision)
}

fn run_false_accepts(args: &Args, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut files =
        evaluate::audio_files(dir).with_context(|| format!("reading {}", dir.display()))?;
    let model = keyword_model(args)?;
    let net = &model.net;
    if args.val_split {
        files.retain(|f| evaluate::is_held_out_recording(f, args.seed, args.val_percent));
    }
    let decision = decision_of(net, args)?;
    let r = evaluate::eval_false_accepts(net, &decision, model.confirm.as_ref(), &files)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_decision(&decision);
        print_confirm(&model, r.rejected);
        println!("recordings: {} files, {:.3} h", r.files, r.hours);
        println!(
            "false accepts per hour: {:.1} ({} events)",
            r.events_per_hour, r.events
        );
        let per: Vec<String> = r
            .per_keyword
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!("by keyword: {}", per.join(", "));
        for (f, n, s) in &r.worst_files {
            println!("  {n:>3} events in {s:>6.1} s  {f}");
        }
        if !r.found.is_empty() {
            println!("events (word start-decision, s, and score; every one with --json):");
        }
        for fa in r.found.iter().take(LISTED_EVENTS) {
            let e = &fa.event;
            println!(
                "  {:<8} {:>7.2}-{:<7.2} {:.3}  {}",
                e.keyword, e.start, e.end, e.score, fa.file
            );
        }
        if r.found.len() > LISTED_EVENTS {
            println!("  ... {} more", r.found.len() - LISTED_EVENTS);
        }
    }
    Ok(report_errors(&r.errors))
}

/// Events `eval --false-accepts` lists in its text report.
const LISTED_EVENTS: usize = 20;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.false_accepts {
        return run_false_accepts(&args, dir);
    }
    let data = args.data.clone().context("--data DIR is needed")?;
    let mut clips =
        evaluate::clips_of(&data).with_context(|| format!("reading {}", data.display()))?;
    let model = keyword_model(&args)?;
    let net = &*model.net;
    let model_name = net.spec().name.clone();
    if args.val_split {
        clips = sepstream_train::dataset::split_by_speaker(&clips, args.seed, args.val_percent).1;
    }
    if let Some(m) = args.limit {
        let k = clips.len().div_ceil(m.max(1)).max(1);
        clips = clips.into_iter().step_by(k).collect();
    }
    if args.stream {
        let fe = ModelSettings::from_spec(net.spec())?.frontend;
        let decision = decision_of(net, &args)?;
        let (samples, words) = if args.background.is_empty() {
            evaluate::build_stream(&clips, fe.sample_rate, args.seed)?
        } else {
            let mut files = Vec::new();
            for d in &args.background {
                let mut these =
                    evaluate::audio_files(d).with_context(|| format!("reading {}", d.display()))?;
                if args.val_split {
                    // The held-out speakers of the background too, so a model trained on the
                    // other speakers' recordings (`train --negatives`) is judged on new voices.
                    // A folder without any held-out file (noise recordings named by their
                    // kind) is used whole.
                    let held_out: Vec<PathBuf> = these
                        .iter()
                        .filter(|f| evaluate::is_held_out_recording(f, args.seed, args.val_percent))
                        .cloned()
                        .collect();
                    if !held_out.is_empty() {
                        these = held_out;
                    }
                }
                if !args.json {
                    println!("background: {} recordings of {}", these.len(), d.display());
                }
                files.extend(these);
            }
            evaluate::build_stream_on_background(
                &clips,
                fe.sample_rate,
                args.seed,
                &files,
                args.snr,
            )?
        };
        let r = evaluate::eval_stream(
            net,
            &decision,
            model.confirm.as_ref(),
            &samples,
            fe.sample_rate,
            &words,
        )?;
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            print_decision(&decision);
            print_confirm(&model, r.rejected);
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
    let mut decision = ModelSettings::from_spec(net.spec())?.decision;
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
                model_name
            );
        }
        evaluate::ClipMode::Window {
            seconds: decision.window,
        }
    } else {
        evaluate::ClipMode::Stream { tail }
    };
    let r = evaluate::eval_clips_in(net, &clips, mode)?;
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
    Ok(report_errors(&r.errors))
}
