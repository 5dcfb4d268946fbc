//! Live keyword spotting from the default microphone with the sepstream pipeline:
//! capture (cpal -> SPSC ring) -> inference (front end + streaming keyword model + decisions) -> actuation.
//!
//! `cargo run --release --example live_kws -- [MODEL.toml] [SECONDS]`
//! (default: the shipped configs/kws.toml; 10 s).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sepstream::audio::mic::MicOptions;
use sepstream::pipeline::{start_listen, AudioInput, KwsModel, PipelineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model_path = args
        .next()
        .map_or_else(|| PathBuf::from("configs/kws.toml"), PathBuf::from);
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10.0);
    let model = KwsModel::load(&model_path, false)?;
    let config_path = std::path::Path::new("configs/pipeline.toml");
    let config = if config_path.is_file() {
        PipelineConfig::load(config_path)?
    } else {
        PipelineConfig::default()
    };
    // The actuation stage: here it prints; a robot would turn the keyword into a motion command.
    let listener = start_listen(model, AudioInput::Mic(MicOptions::default()), config, |d| {
        println!("{d}");
        Ok(())
    })?;
    let mut running = listener.running;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs_f64(seconds) {
        if running.wait_for(Duration::from_millis(100)) {
            break;
        }
    }
    let (report, result) = running.shutdown(Duration::from_secs(1));
    eprint!("{report}");
    result?;
    Ok(())
}
