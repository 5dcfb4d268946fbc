//! `sepstream inspect`, `sepstream cost` and `sepstream factorize`: the seed's mathematics
//! (cost of separable layers, their standard twins, best separable approximations) as tools.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use sepstream_nn::cost::{model_cost, ConvForm, ModelCost, SeparableComparison};
use sepstream_nn::factorize::factorize_model;
use sepstream_nn::{ModelSpec, Network, Weights};

/// Options of `sepstream inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Model spec (TOML). Only shapes are used: the weights file is not read.
    pub spec: PathBuf,
    /// Print the whole cost model as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `sepstream cost`.
#[derive(clap::Args)]
pub struct CostArgs {
    /// Input channels.
    #[arg(long)]
    pub cin: usize,
    /// Output channels.
    #[arg(long)]
    pub cout: usize,
    /// Kernel size k (a k x k kernel; with --kw, k is the first (time) dimension).
    #[arg(long)]
    pub k: usize,
    /// Kernel width, for a rectangular k x kw kernel (default: k).
    #[arg(long)]
    pub kw: Option<usize>,
    /// Output height for the FLOP count (default 1: per output position).
    #[arg(long, default_value_t = 1)]
    pub h: usize,
    /// Output width for the FLOP count (default 1: per output position).
    #[arg(long, default_value_t = 1)]
    pub w: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `sepstream factorize`.
#[derive(clap::Args)]
pub struct FactorizeArgs {
    /// Model spec (TOML) with the standard layer to replace.
    #[arg(long)]
    pub spec: PathBuf,
    /// Weights (safetensors); default: the file the spec names.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Name of the conv1d/conv2d layer to replace.
    #[arg(long)]
    pub layer: String,
    /// Where to write the new spec (TOML).
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the new weights; default: --out with the extension `.safetensors`.
    #[arg(long)]
    pub out_weights: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `1234567` -> `1,234,567`.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn shape(s: sepstream_nn::FrameShape) -> String {
    format!("{}x{}", s.width, s.channels)
}

pub fn run_inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::load(&a.spec)?;
    // Costs depend on shapes only: build with placeholder weights so no weights file is needed.
    let net = Network::random(spec, 0)
        .with_context(|| format!("{}: cannot build the model", a.spec.display()))?;
    let cost = model_cost(&net);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cost)?);
    } else {
        print!("{}", inspect_table(&cost));
    }
    Ok(ExitCode::SUCCESS)
}

/// The per-layer table and totals of `sepstream inspect`.
fn inspect_table(c: &ModelCost) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {}: input {} (width x channels) at {} frames/s, output {}",
        c.name,
        shape(c.input),
        c.frame_rate,
        shape(c.output)
    );
    let _ = writeln!(
        s,
        "{:<12} {:<12} {:>7} {:>7} {:>6} {:>6} {:>9} {:>12} {:>8} {:>10} {:>9} {:>4} {:>5}  separable vs standard",
        "layer", "kind", "in", "out", "kernel", "stride", "params", "FLOPs/frame", "frames/s",
        "MFLOP/s", "state B", "RF", "delay"
    );
    for l in &c.layers {
        let pair = |p: Option<(usize, usize)>| p.map_or("-".into(), |(a, b)| format!("{a}x{b}"));
        let twin = match (&l.form, &l.comparison) {
            (Some(ConvForm::Separable), Some(cmp)) => format!(
                "ratio {:.4} (standard twin {} params, {} FLOPs/frame; dof {})",
                cmp.ratio,
                grouped(cmp.standard_weights),
                grouped(cmp.standard_flops),
                l.dof.unwrap_or(0)
            ),
            (Some(ConvForm::Standard), Some(cmp)) => format!(
                "ratio {:.4} (separable twin {} params, {} FLOPs/frame)",
                cmp.ratio,
                grouped(cmp.separable_weights),
                grouped(cmp.separable_flops)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<12} {:<12} {:>7} {:>7} {:>6} {:>6} {:>9} {:>12} {:>8.2} {:>10.3} {:>9} {:>4} {:>5}  {}",
            l.name,
            l.kind,
            shape(l.input),
            shape(l.output),
            pair(l.kernel),
            pair(l.stride),
            grouped(l.params as u64),
            grouped(l.flops_per_frame),
            l.frames_per_second,
            l.flops_per_second / 1e6,
            grouped(l.state_bytes as u64),
            l.receptive_field,
            l.delay,
            twin
        );
    }
    let _ = writeln!(
        s,
        "total: {} params ({} weights), {} FLOPs per hop (mean; peak {}), {:.3} MFLOP/s, {} state bytes",
        grouped(c.params as u64),
        grouped(c.weights as u64),
        grouped(c.flops_per_hop_mean.round() as u64),
        grouped(c.flops_per_hop_peak),
        c.flops_per_second / 1e6,
        grouped(c.state_bytes as u64)
    );
    let _ = writeln!(
        s,
        "receptive field: {} frames ({:.1} ms); delay: {} frames ({:.1} ms); time stride {}",
        c.receptive_field_frames, c.receptive_field_ms, c.delay_frames, c.delay_ms, c.time_stride
    );
    let _ = writeln!(
        s,
        "(FLOPs = 2 x multiply-adds of weights, nominal windows, biases/activations/pooling not \
         counted; RF and delay columns in input frames; ratio = separable/standard weights = \
         1/C_out + 1/k^2)"
    );
    s
}

pub fn run_cost(a: CostArgs) -> anyhow::Result<ExitCode> {
    let kw = a.kw.unwrap_or(a.k);
    for (name, v) in [
        ("--cin", a.cin),
        ("--cout", a.cout),
        ("--k", a.k),
        ("--kw", kw),
        ("--h", a.h),
        ("--w", a.w),
    ] {
        if v == 0 {
            bail!("{name} must be at least 1, got 0");
        }
    }
    let c = SeparableComparison::new(a.cin, a.cout, a.k * kw, a.h * a.w);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(ExitCode::SUCCESS);
    }
    let where_ = if a.h * a.w == 1 {
        "per output position".to_string()
    } else {
        format!("over a {}x{} output", a.h, a.w)
    };
    println!(
        "one layer: C_in {}, C_out {}, kernel {}x{}; FLOPs {where_} (1 multiply-add = 2 FLOPs)",
        a.cin, a.cout, a.k, kw
    );
    println!("{:<10} {:>16} {:>18}", "", "parameters", "FLOPs");
    println!(
        "{:<10} {:>16} {:>18}   k^2 C_in C_out",
        "standard",
        grouped(c.standard_weights),
        grouped(c.standard_flops)
    );
    println!(
        "{:<10} {:>16} {:>18}   k^2 C_in + C_in C_out",
        "separable",
        grouped(c.separable_weights),
        grouped(c.separable_flops)
    );
    println!(
        "ratio {:.4} = 1/C_out + 1/k^2 = 1/{} + 1/{} (same for parameters and FLOPs, any H, W, C_in)",
        c.ratio, a.cout, c.taps
    );
    println!("reduction {:.1}%", 100.0 * c.reduction);
    println!(
        "degrees of freedom: separable {} (parameters - C_in: per-channel scale), standard {}",
        grouped(c.separable_dof),
        grouped(c.standard_weights)
    );
    Ok(ExitCode::SUCCESS)
}

/// `target` relative to the directory of `from_file` when it lies in that directory, else
/// absolute.
#[derive(serde::Serialize)]
struct FactorizeReport<'a> {
    layer: &'a str,
    replacement: &'a [String],
    relative_error: f64,
    error_norm: f64,
    kernel_norm: f64,
    singular_values: &'a [Vec<f64>],
    channel_errors: &'a [f64],
    layer_params_before: usize,
    layer_params_after: usize,
    layer_flops_per_frame_before: u64,
    layer_flops_per_frame_after: u64,
    model_params_before: usize,
    model_params_after: usize,
    model_flops_per_second_before: f64,
    model_flops_per_second_after: f64,
    spec: PathBuf,
    weights: PathBuf,
}

fn saving(before: f64, after: f64) -> String {
    if before > 0.0 {
        format!("{:.1}%", 100.0 * (before - after) / before)
    } else {
        "-".into()
    }
}

pub fn run_factorize(a: FactorizeArgs) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::load(&a.spec)?;
    let weights_path = match &a.weights {
        Some(w) => w.clone(),
        None => spec.weights_path(&a.spec).with_context(|| {
            format!("{} names no weights file: pass --weights", a.spec.display())
        })?,
    };
    let weights = Weights::load(&weights_path)?;
    let fm = factorize_model(&spec, &weights, &a.layer)
        .with_context(|| format!("cannot factorize {}", a.spec.display()))?;
    let before = model_cost(&Network::from_spec_and_tensors(spec, &weights)?);
    let after = model_cost(&fm.network);

    let out_weights = a
        .out_weights
        .clone()
        .unwrap_or_else(|| a.out.with_extension("safetensors"));
    if out_weights == a.out {
        bail!(
            "--out and the weights output are the same file: {}",
            a.out.display()
        );
    }
    fm.spec.save_bundle(&fm.weights, &a.out, &out_weights)?;
    // What was written loads back.
    Network::load(&a.out)
        .with_context(|| format!("{}: written but does not load", a.out.display()))?;

    let old = before
        .layers
        .iter()
        .find(|l| l.name == fm.layer)
        .context("replaced layer missing from the cost model")?;
    let new: Vec<_> = after
        .layers
        .iter()
        .filter(|l| fm.replacement.contains(&l.name))
        .collect();
    let new_params: usize = new.iter().map(|l| l.params).sum();
    let new_flops: u64 = new.iter().map(|l| l.flops_per_frame).sum();
    let f = &fm.factorization;
    if a.json {
        let report = FactorizeReport {
            layer: &fm.layer,
            replacement: &fm.replacement,
            relative_error: f.relative_error,
            error_norm: f.error_norm,
            kernel_norm: f.kernel_norm,
            singular_values: &f.singular_values,
            channel_errors: &f.channel_errors,
            layer_params_before: old.params,
            layer_params_after: new_params,
            layer_flops_per_frame_before: old.flops_per_frame,
            layer_flops_per_frame_after: new_flops,
            model_params_before: before.params,
            model_params_after: after.params,
            model_flops_per_second_before: before.flops_per_second,
            model_flops_per_second_after: after.flops_per_second,
            spec: a.out.clone(),
            weights: out_weights.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "layer {} ({}, {} -> {} channels, {} taps) -> {} ({})",
        fm.layer,
        old.kind,
        f.c_in,
        f.c_out,
        f.taps,
        fm.replacement.join(" + "),
        new.iter()
            .map(|l| l.kind.name())
            .collect::<Vec<_>>()
            .join(" + ")
    );
    println!(
        "relative Frobenius error {:.6} (||W - W_sep|| = {:.6}, ||W|| = {:.6}): what no separable layer can represent",
        f.relative_error, f.error_norm, f.kernel_norm
    );
    println!("per input channel: singular values of its C_out x taps slice; relative error");
    for (i, (sv, e)) in f.singular_values.iter().zip(&f.channel_errors).enumerate() {
        let values: Vec<String> = sv.iter().map(|v| format!("{v:.4}")).collect();
        println!("  {i:>4}: [{}]; {e:.6}", values.join(" "));
    }
    println!(
        "layer parameters: {} -> {} (saved {}); FLOPs per output frame: {} -> {} (saved {})",
        grouped(old.params as u64),
        grouped(new_params as u64),
        saving(old.params as f64, new_params as f64),
        grouped(old.flops_per_frame),
        grouped(new_flops),
        saving(old.flops_per_frame as f64, new_flops as f64)
    );
    println!(
        "model parameters: {} -> {} (saved {}); MFLOP/s: {:.3} -> {:.3} (saved {})",
        grouped(before.params as u64),
        grouped(after.params as u64),
        saving(before.params as f64, after.params as f64),
        before.flops_per_second / 1e6,
        after.flops_per_second / 1e6,
        saving(before.flops_per_second, after.flops_per_second)
    );
    println!("wrote {} and {}", a.out.display(), out_weights.display());
    Ok(ExitCode::SUCCESS)
}
