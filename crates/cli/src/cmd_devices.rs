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
        for line in summarize(&d.configs) {
            println!("    {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One text line per rate range, with the channel counts and sample formats offered over it
/// folded together (a device that takes 1-64 channels in 14 formats is 1 line, not 896).
fn summarize(configs: &[(u16, u32, u32, String)]) -> Vec<String> {
    let mut ranges: Vec<(u32, u32)> = configs.iter().map(|c| (c.1, c.2)).collect();
    ranges.sort_unstable();
    ranges.dedup();
    ranges
        .into_iter()
        .map(|(lo, hi)| {
            let mut channels: Vec<u16> = configs
                .iter()
                .filter(|c| (c.1, c.2) == (lo, hi))
                .map(|c| c.0)
                .collect();
            channels.sort_unstable();
            channels.dedup();
            let mut formats: Vec<&str> = Vec::new();
            for c in configs.iter().filter(|c| (c.1, c.2) == (lo, hi)) {
                if !formats.contains(&c.3.as_str()) {
                    formats.push(&c.3);
                }
            }
            let rates = if lo == hi {
                format!("{lo} Hz")
            } else {
                format!("{lo}-{hi} Hz")
            };
            let contiguous = channels.windows(2).all(|w| w[1] == w[0] + 1);
            let ch = match (channels.first(), channels.last()) {
                (Some(a), Some(b)) if a == b => format!("{a} ch"),
                (Some(a), Some(b)) if contiguous => format!("{a}-{b} ch"),
                _ => format!(
                    "{} ch",
                    channels
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join("/")
                ),
            };
            format!("{rates}, {ch}, {}", formats.join("/"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn folds_channels_and_formats_per_rate_range() {
        let mut configs = Vec::new();
        for fmt in ["I16", "F32"] {
            for ch in 1..=64u16 {
                configs.push((ch, 1, 192_000, fmt.to_string()));
            }
        }
        configs.push((2, 48_000, 48_000, "I16".to_string()));
        configs.push((6, 48_000, 48_000, "I16".to_string()));
        assert_eq!(
            summarize(&configs),
            ["1-192000 Hz, 1-64 ch, I16/F32", "48000 Hz, 2/6 ch, I16"]
        );
    }
}
