//! `sepstream import`: a model trained elsewhere (frozen TensorFlow graph .pb, ONNX) as a spec + safetensors, via sepstream-import.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sepstream_import::{import_path, ImportOptions};

/// Options of `sepstream import`.
#[derive(clap::Args)]
pub struct Args {
    /// The model: a frozen TensorFlow graph (.pb) or an ONNX file (.onnx).
    model: PathBuf,
    /// The spec to write, e.g. configs/NAME.toml.
    #[arg(long)]
    out: PathBuf,
    /// The weights to write (default: ../assets/<out file name>.safetensors when an assets
    /// folder is beside the spec's folder, else <out file name>.safetensors beside the spec);
    /// the spec names them relative to itself.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The model's name (default: the model's file stem).
    #[arg(long)]
    name: Option<String>,
    /// The graph's output node (default: labels_softmax, else the one node nothing consumes).
    #[arg(long)]
    output: Option<String>,
    /// Sample rate of the audio for a graph with its own front end (TensorFlow's Mfcc reads
    /// it from the WAV at run time).
    #[arg(long, default_value_t = 16000)]
    sample_rate: u32,
    /// Labels, comma separated (default: labels.txt beside the model, if present).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Input frames per second, for a graph that takes features instead of audio.
    #[arg(long)]
    frame_rate: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = ImportOptions {
        name: args.name,
        sample_rate: args.sample_rate,
        labels: args.labels,
        output: args.output,
        frame_rate: args.frame_rate,
    };
    let imported = import_path(&args.model, &opts)
        .with_context(|| format!("importing {}", args.model.display()))?;
    let weights = args.weights.unwrap_or_else(|| {
        let dir = args.out.parent().unwrap_or(std::path::Path::new("."));
        dir.join(crate::default_weights_path(&args.out, &imported.spec.name))
    });
    let spec = imported
        .write(&args.out, &weights)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let net = imported.network()?;
    let rate = spec.input.frame_rate;
    println!(
        "{}: {} layers, {} parameters, input {} x {} at {rate} frames/s",
        spec.name,
        spec.layers.len(),
        net.layers().iter().map(|l| l.params()).sum::<usize>(),
        spec.input.width,
        spec.input.channels,
    );
    println!(
        "delay {} frames ({:.0} ms) run causally; wrote {} and {}",
        net.delay(),
        net.delay() as f64 / rate * 1000.0,
        args.out.display(),
        weights.display()
    );
    Ok(ExitCode::SUCCESS)
}
