//! `sepstream ensemble`: merges independently trained models of one architecture into one network
//! that streams like any other and outputs the mean of their logits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sepstream_nn::cost::model_cost;
use sepstream_nn::Network;

/// Options of `sepstream ensemble`.
#[derive(clap::Args)]
pub struct Args {
    /// Member specs (each with its weights), e.g. the exports of `sepstream train` run with
    /// different --seed and one --split-seed.
    #[arg(required = true, num_args = 1..)]
    members: Vec<PathBuf>,
    /// Where to write the merged spec.
    #[arg(long, default_value = "configs/kws.toml")]
    out: PathBuf,
    /// Weights file, relative to the output spec (default ../assets/<out file name>.safetensors
    /// when an assets folder is beside the spec's folder, else beside the spec).
    #[arg(long)]
    weights: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let members: Vec<Network> = args
        .members
        .iter()
        .map(|p| Network::load(p).with_context(|| format!("loading member {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    let merged = sepstream_nn::ensemble::merge(&members).context("merging the members")?;
    let mut spec = merged.spec().clone();
    let weights_rel = args
        .weights
        .clone()
        .unwrap_or_else(|| crate::default_weights_path(&args.out, &spec.name));
    let provenance: Vec<String> = args
        .members
        .iter()
        .zip(&members)
        .enumerate()
        .map(|(i, (p, m))| {
            format!(
                "member {} ({}): {}",
                i + 1,
                p.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                m.spec().provenance.as_deref().unwrap_or("no provenance")
            )
        })
        .collect();
    spec.provenance = Some(format!(
        "`sepstream ensemble` of {} members (logits averaged); {}",
        members.len(),
        provenance.join("; ")
    ));
    let weights_path = args
        .out
        .parent()
        .unwrap_or(Path::new("."))
        .join(&weights_rel);
    spec.save_bundle(&merged.weights(), &args.out, &weights_path)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let back = Network::load(&args.out)
        .with_context(|| format!("{}: written but does not load", args.out.display()))?;
    let one = model_cost(&members[0]);
    let all = model_cost(&back);
    println!(
        "{} members -> {}: {} params, {:.0} FLOPs per hop, {} state bytes (one member: {} params, {:.0} FLOPs per hop, {} state bytes)",
        members.len(),
        args.out.display(),
        all.params,
        all.flops_per_hop_mean,
        all.state_bytes,
        one.params,
        one.flops_per_hop_mean,
        one.state_bytes
    );
    eprintln!(
        "wrote {} and {}",
        args.out.display(),
        weights_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
