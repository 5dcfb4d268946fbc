//! `sepstream devices`: the audio input devices of the default host with their supported rates.

use std::process::ExitCode;

/// Options of `sepstream devices`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object per device.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let devices = sepstream_audio::mic::list_input_devices()?;
    if devices.is_empty() {
        eprintln!("no input devices found (is a sound server running?)");
        return Ok(ExitCode::FAILURE);
    }
    for d in &devices {
        if args.json {
            let configs: Vec<_> = d
                .configs
                .iter()
                .map(|(ch, lo, hi, fmt)| {
                    serde_json::json!({"channels": ch, "min_rate": lo, "max_rate": hi, "format": fmt})
                })
                .collect();
            let line = serde_json::json!({
                "name": d.name,
                "default": d.is_default,
                "default_config": d.default_config.as_ref().map(|(ch, r, f)| serde_json::json!({"channels": ch, "rate": r, "format": f})),
                "configs": configs,
            });
            println!("{line}");
            continue;
        }
        println!(
            "{}{}",
            d.name,
            if d.is_default { "  (default)" } else { "" }
        );
        if let Some((ch, rate, fmt)) = &d.default_config {
            println!("    default: {rate} Hz, {ch} ch, {fmt}");
        }
        for (ch, lo, hi, fmt) in &d.configs {
            if lo == hi {
                println!("    {lo} Hz, {ch} ch, {fmt}");
            } else {
                println!("    {lo}-{hi} Hz, {ch} ch, {fmt}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
