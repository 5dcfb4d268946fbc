//! Live keyword spotting from the default microphone with the sepstream pipeline:
//! capture (cpal -> SPSC ring) -> inference (front end + streaming keyword model + decisions) -> actuation.
//!
//! `cargo run --release --example live_kws -- [MODEL.toml] [SECONDS]`
//! (default: the bundled keyword model; 10 s).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sepstream::audio::mic::MicOptions;
use sepstream::pipeline::{start_listen, AudioInput, KwsModel, PipelineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = match args.next() {
        Some(spec) => KwsModel::load(&PathBuf::from(spec), false)?,
        None => KwsModel::bundled_default()?,
    };
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10.0);
    let config = PipelineConfig::shipped();
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
