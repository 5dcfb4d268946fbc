//! The `sepstream` command: keyword spotting on WAV files and the microphone, model tools, benches.

use clap::{Parser, Subcommand};

mod cmd_bench;
mod cmd_devices;
mod cmd_ensemble;
mod cmd_eval;
mod cmd_import;
mod cmd_inspect;
mod cmd_listen;
mod cmd_models;
mod cmd_robot;
mod cmd_train;
mod cmd_wav;
mod model_arg;
mod wav_plot;

/// Keyword spotting in audio files, pipes and from the microphone, with causal depthwise-separable
/// CNNs run one frame at a time; robot perception and model tools on the same engine.
#[derive(Parser)]
#[command(name = "sepstream", version, long_about = None)]
struct Cli {
    /// Let the sound libraries (ALSA, JACK) print their own diagnostics while devices are
    /// probed; hidden by default (device errors are reported either way).
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Spot keywords live from the microphone (all stages here, or some, the others in other
    /// processes over zenoh).
    Listen(cmd_listen::Args),
    /// Run the inference stage alone: audio blocks in and keyword events out over zenoh.
    ServeInference(cmd_listen::ServeArgs),
    /// List audio input devices and their supported sample rates.
    Devices(cmd_devices::Args),
    /// Spot keywords in audio files (WAV, FLAC, MP3, Ogg/Vorbis) or standard input (`-`).
    Wav(cmd_wav::Args),
    /// Evaluate a keyword model on a Speech Commands-layout folder with the streaming engine.
    Eval(cmd_eval::Args),
    /// Import a frozen TensorFlow graph (.pb) or an ONNX file as a spec + safetensors.
    Import(cmd_import::Args),
    /// Train a keyword model on a Speech Commands-layout folder.
    Train(cmd_train::Args),
    /// Merge models of one architecture, trained with different seeds, into one network.
    Ensemble(cmd_ensemble::Args),
    /// The models compiled into the binary: labels, size, cost, accuracy, licence.
    Models(cmd_models::Args),
    /// Per-layer parameters, FLOPs, state and delay of a model spec.
    Inspect(cmd_inspect::InspectArgs),
    /// The cost formulas for one separable layer against its standard twin.
    Cost(cmd_inspect::CostArgs),
    /// Replace a standard convolution by its best separable approximation.
    Factorize(cmd_inspect::FactorizeArgs),
    /// Deadline-bound latency harness: audio hops, a depth frame and a control tick.
    Bench(cmd_bench::Args),
    /// Run the simulated robot with keyword commands and depth perception.
    Robot(cmd_robot::Args),
}

/// Where a written model's weights go by default, relative to its spec `out`:
/// `../assets/<out file name>.safetensors` in a project laid out like this one (an `assets`
/// folder beside the spec's folder), else `<out file name>.safetensors` beside the spec
/// (`name` when `out` has no file name).
fn default_weights_path(out: &std::path::Path, name: &str) -> std::path::PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned());
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if dir.join("../assets").is_dir() {
        std::path::PathBuf::from(format!("../assets/{stem}.safetensors"))
    } else {
        std::path::PathBuf::from(format!("{stem}.safetensors"))
    }
}

fn main() -> std::process::ExitCode {
    // Output piped into `head` and the like: end quietly when the reader goes away, as Unix
    // tools do, instead of panicking on the next print.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    sepstream_audio::mic::show_backend_messages(cli.verbose);
    let result = match cli.command {
        Command::Listen(a) => cmd_listen::run(a),
        Command::ServeInference(a) => cmd_listen::run_serve(a),
        Command::Devices(a) => cmd_devices::run(a),
        Command::Wav(a) => cmd_wav::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Import(a) => cmd_import::run(a),
        Command::Train(a) => cmd_train::run(a),
        Command::Ensemble(a) => cmd_ensemble::run(a),
        Command::Models(a) => cmd_models::run(a),
        Command::Inspect(a) => cmd_inspect::run_inspect(a),
        Command::Cost(a) => cmd_inspect::run_cost(a),
        Command::Factorize(a) => cmd_inspect::run_factorize(a),
        Command::Bench(a) => cmd_bench::run(a),
        Command::Robot(a) => cmd_robot::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
