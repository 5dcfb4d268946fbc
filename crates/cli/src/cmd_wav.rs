//! `sepstream wav`: every keyword in audio files or standard input (file, keyword, start, end,
//! score), files in parallel across cores, each streamed block by block through a
//! [`sepstream_kws::Spotter`] (FeatureStream -> Network::step -> KeywordDetector), events printed
//! as they are found.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sepstream_audio::{AudioError, AudioReader};
use sepstream_kws::{Event, KwsError, KwsModel, Spotter, Trace};

/// Options of `sepstream wav`.
#[derive(clap::Args)]
#[command(after_help = "\
Formats: WAV (8/16/24/32-bit integer, 32-bit float; headers that give no length, as `arecord`,
`sox` and `ffmpeg` write to a pipe, are read to the end), FLAC, MP3 and Ogg/Vorbis, at any
sample rate and channel count (resampled to the model's rate, channels averaged). `-` reads
standard input, e.g. `arecord -f S16_LE -r 16000 | sepstream wav -`.

Events are printed as they are found, so nothing found is lost when a file turns out to be
damaged: a file cut short or damaged part of the way in gives every event before the damage,
then a warning naming the file and the byte offset.

Exit status: 0 when every file was read to its end; 1 when any file could not be read, or was
cut or damaged part of the way in; 2 for a wrong command line.")]
pub struct Args {
    /// Audio files (WAV, FLAC, MP3, Ogg/Vorbis); `-` is standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Model: a spec file (TOML, with its weights), or the name of a bundled model
    /// (`sepstream models`). Default: the bundled keyword model `kws`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// After each file, a line on stderr: audio length, format, events, time taken and speed
    /// (times real time).
    #[arg(long)]
    stats: bool,
    /// Also draw the spectrogram with the keyword posteriors and events under it into this PNG
    /// (with several files: one PNG each, named PLOT's stem + '-' + the file's stem). Keeps every
    /// feature frame in memory for the picture.
    #[arg(long, value_name = "PLOT.png")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    confirm: crate::model_arg::ConfirmArgs,
}

/// Prints each file's events in the order of the command line while files run in parallel:
/// the first unfinished file's events go out as they are found, the others' wait their turn.
/// A failed write (a full disk, a closed file) is kept and reported at the end: never a silent
/// loss.
struct OrderedPrinter {
    next: usize,
    waiting: Vec<Vec<String>>,
    finished: Vec<bool>,
    write_error: Option<std::io::Error>,
}

impl OrderedPrinter {
    fn new(n: usize) -> Self {
        OrderedPrinter {
            next: 0,
            waiting: vec![Vec::new(); n],
            finished: vec![false; n],
            write_error: None,
        }
    }

    fn write(&mut self, lines: &[String]) {
        if self.write_error.is_some() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let result = lines
            .iter()
            .try_for_each(|l| writeln!(out, "{l}"))
            .and_then(|()| out.flush());
        if let Err(e) = result {
            self.write_error = Some(e);
        }
    }

    fn line(&mut self, file: usize, line: String) {
        if file == self.next {
            self.write(std::slice::from_ref(&line));
        } else {
            self.waiting[file].push(line);
        }
    }

    fn finish(&mut self, file: usize) {
        self.finished[file] = true;
        while self.next < self.finished.len() && self.finished[self.next] {
            self.next += 1;
            if self.next < self.waiting.len() {
                let lines = std::mem::take(&mut self.waiting[self.next]);
                self.write(&lines);
            }
        }
    }

    fn failed(&self) -> bool {
        self.write_error.is_some()
    }
}

fn event_line(name: &str, e: &Event, json: bool) -> String {
    if json {
        serde_json::json!({"file": name, "keyword": e.keyword, "start": round3(e.start), "end": round3(e.end), "score": round3(f64::from(e.score))}).to_string()
    } else {
        format!(
            "{name}\t{}\t{:.2}\t{:.2}\t{:.3}",
            e.keyword, e.start, e.end, e.score
        )
    }
}

/// How one file went.
struct FileOutcome {
    /// Events found (also those before damage).
    events: usize,
    /// Events the second-stage check turned down.
    rejected: usize,
    seconds: f64,
    codec: String,
    /// Why the file could not be read to its end.
    error: Option<anyhow::Error>,
}

struct Job<'a> {
    model: &'a KwsModel,
    json: bool,
    printer: &'a Mutex<OrderedPrinter>,
}

impl Job<'_> {
    fn run(&self, index: usize, path: &Path, plot: Option<&Path>) -> FileOutcome {
        let name = path.display().to_string();
        let mut outcome = FileOutcome {
            events: 0,
            rejected: 0,
            seconds: 0.0,
            codec: String::new(),
            error: None,
        };
        let mut reader = match AudioReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                outcome.error = Some(e.into());
                return outcome;
            }
        };
        outcome.codec = format!(
            "{}, {} Hz, {} ch",
            reader.info().codec,
            reader.info().sample_rate,
            reader.info().channels
        );
        let mut spotter = match Spotter::new(self.model, reader.info().sample_rate) {
            Ok(s) => s,
            Err(e) => {
                outcome.error = Some(e.into());
                return outcome;
            }
        };
        let keep = plot.is_some();
        let labels = &self.model.labels;
        let mut trace = Trace::default();
        let mut events = 0;
        let mut rejected = 0;
        let result = spotter.push_reader(&mut reader, |hop| {
            if keep {
                trace.record(hop, labels);
            }
            rejected += usize::from(hop.rejected.is_some());
            if let Some(h) = &hop.hit {
                events += 1;
                let line = event_line(&name, &Event::from_hit(h, labels), self.json);
                if let Ok(mut p) = self.printer.lock() {
                    p.line(index, line);
                }
            }
        });
        outcome.events = events;
        outcome.rejected = rejected;
        outcome.seconds = reader.seconds_read();
        if let Err(e) = result {
            outcome.error = Some(describe(e, outcome.events, outcome.seconds));
        }
        if let Some(png) = plot {
            let title = format!("{name} ({})", self.model.spec().name);
            match crate::wav_plot::draw(&trace, labels, self.model.decision.threshold, &title, png)
            {
                Ok(()) => eprintln!("{name}: plot in {}", png.display()),
                Err(e) => {
                    if outcome.error.is_none() {
                        outcome.error = Some(e);
                    }
                }
            }
        }
        outcome
    }
}

/// The error of a file, saying what was kept when it broke part of the way in.
fn describe(e: KwsError, events: usize, seconds: f64) -> anyhow::Error {
    match e {
        KwsError::Read(e @ (AudioError::Truncated { .. } | AudioError::Damaged { .. })) => {
            anyhow::anyhow!(
                "{e} (after {seconds:.2} s of audio; the {events} events before it are printed)"
            )
        }
        KwsError::Read(other) => other.into(),
        other => other.into(),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdin_uses = args.files.iter().filter(|f| f.as_os_str() == "-").count();
    if stdin_uses > 1 {
        anyhow::bail!("`-` (standard input) can be given only once");
    }
    let (mut model, _) = crate::model_arg::keyword_model(args.model.as_deref())?;
    args.confirm.apply(&mut model)?;
    let checked = model.confirm.is_some();
    if args.stats {
        if let Some(line) = crate::model_arg::describe_confirm(&model) {
            eprintln!("{line}");
        }
    }
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
    let printer = Mutex::new(OrderedPrinter::new(n));
    let job = Job {
        model: &model,
        json: args.json,
        printer: &printer,
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || printer.lock().is_ok_and(|p| p.failed()) {
                    break;
                }
                let path = &args.files[i];
                let started = Instant::now();
                let outcome = job.run(i, path, plots[i].as_deref());
                let took = started.elapsed().as_secs_f64();
                if let Ok(mut p) = printer.lock() {
                    p.finish(i);
                }
                let name = path.display();
                if let Some(e) = &outcome.error {
                    failed.fetch_add(1, Ordering::Relaxed);
                    bar.suspend(|| eprintln!("error: {e:#}"));
                }
                if args.stats {
                    let turned_down = if checked {
                        format!(" ({} turned down by the check)", outcome.rejected)
                    } else {
                        String::new()
                    };
                    bar.suspend(|| {
                        eprintln!(
                            "{name}: {:.1} s of audio ({}), {} events{turned_down}, {:.2} s, {:.0}x real time",
                            outcome.seconds,
                            outcome.codec,
                            outcome.events,
                            took,
                            outcome.seconds / took.max(1e-9)
                        )
                    });
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = printer.into_inner().ok().and_then(|p| p.write_error) {
        // Events that could not be written are lost to the reader: say so, fail.
        anyhow::bail!("writing the events to standard output: {e}");
    }
    let failed = failed.into_inner();
    if failed > 0 {
        if n > 1 {
            eprintln!("{failed} of {n} files failed");
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
