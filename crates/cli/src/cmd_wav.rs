//! `sepstream wav`: every keyword in WAV files (file, keyword, start, end, score), files in
//! parallel across cores, each through FeatureStream -> Network::step -> KeywordDetector.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use sepstream_nn::Network;
use sepstream_train::evaluate::{self, Event};

/// Options of `sepstream wav`.
#[derive(clap::Args)]
pub struct Args {
    /// WAV files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Model spec (with its weights).
    #[arg(long, default_value = "configs/kws.toml")]
    model: PathBuf,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Also draw the spectrogram with the keyword posteriors and events under it into this PNG
    /// (with several files: one PNG each, named PLOT's stem + '-' + the file's stem).
    #[arg(long, value_name = "PLOT.png")]
    plot: Option<PathBuf>,
}

/// A file's events, and the plot's error if drawing it failed (the events still count).
struct FileResult {
    events: Vec<Event>,
    plot_error: Option<anyhow::Error>,
}

fn one_file(
    net: &Network,
    path: &std::path::Path,
    plot: Option<&std::path::Path>,
) -> anyhow::Result<FileResult> {
    let (fe, de) = evaluate::configs(net)?;
    let (samples, rate) = sepstream_audio::read_wav(path)?;
    let (mut events, plot_error) = match plot {
        None => (evaluate::detect(net, &fe, &de, &samples, rate)?, None),
        Some(png) => {
            let trace = evaluate::trace(net, &fe, &de, &samples, rate)?;
            let title = format!("{} ({})", path.display(), net.spec().name);
            let drawn =
                crate::wav_plot::draw(&trace, &net.spec().labels, de.threshold, &title, png);
            (trace.events, drawn.err())
        }
    };
    events.sort_by(|a, b| a.end.total_cmp(&b.end));
    Ok(FileResult { events, plot_error })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let net = Network::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let n = args.files.len();
    if let Some(p) = &args.plot {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = dir.filter(|d| !d.is_dir()) {
            anyhow::bail!(
                "--plot {}: folder {} does not exist",
                p.display(),
                d.display()
            );
        }
    }
    let plots: Vec<Option<PathBuf>> = args
        .files
        .iter()
        .map(|f| {
            args.plot
                .as_ref()
                .map(|p| crate::wav_plot::path_for(p, f, n))
        })
        .collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |v| v.get()))
        .clamp(1, n.max(1));
    let show = !args.json && std::io::stderr().is_terminal() && n > 1;
    let bar = if show {
        indicatif::ProgressBar::new(n as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<FileResult>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = one_file(&net, &args.files[i], plots[i].as_deref());
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let results = results.into_inner().unwrap_or_default();
    let mut failed = 0;
    for ((path, r), png) in args.files.iter().zip(results).zip(&plots) {
        let name = path.display().to_string();
        match r {
            Some(Ok(FileResult { events, plot_error })) => {
                match (plot_error, png) {
                    (Some(e), _) => {
                        failed += 1;
                        eprintln!("error: {name}: {e:#}");
                    }
                    (None, Some(png)) => eprintln!("{name}: plot in {}", png.display()),
                    (None, None) => {}
                }
                for e in events {
                    if args.json {
                        let v = serde_json::json!({"file": name, "keyword": e.keyword, "start": round3(e.start), "end": round3(e.end), "score": round3(f64::from(e.score))});
                        println!("{v}");
                    } else {
                        println!(
                            "{name}\t{}\t{:.2}\t{:.2}\t{:.3}",
                            e.keyword, e.start, e.end, e.score
                        );
                    }
                }
            }
            Some(Err(e)) => {
                failed += 1;
                eprintln!("error: {name}: {e:#}");
            }
            None => {
                failed += 1;
                eprintln!("error: {name}: not processed");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {n} files failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
