//! `sepstream models`: the models compiled into the binary, with labels, size, cost and how well they do.

use std::process::ExitCode;

use sepstream_nn::bundled::BUNDLED;

/// Options of `sepstream models`.
#[derive(clap::Args)]
pub struct Args {
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for m in BUNDLED {
        let net = m.network()?;
        let cost = sepstream_nn::cost::model_cost(&net);
        let spec = net.spec();
        let flops_per_hop = cost.flops_per_hop_mean;
        if args.json {
            let v = serde_json::json!({
                "name": m.name, "spec_name": spec.name, "task": m.task, "labels": spec.labels,
                "params": cost.params, "flops_per_frame": flops_per_hop, "delay_ms": cost.delay_ms,
                "frame_rate": spec.input.frame_rate, "measured": m.measured,
                "licence": m.licence, "source": m.source,
            });
            println!("{v}");
        } else {
            println!("{} ({})", m.name, spec.name);
            println!("  task:      {}", m.task);
            if !spec.labels.is_empty() {
                println!("  labels:    {}", spec.labels.join(" "));
            }
            println!(
                "  size:      {} params, {:.0} FLOPs per input frame (mean; {} frames/s), delay {:.1} ms",
                cost.params, flops_per_hop, spec.input.frame_rate, cost.delay_ms
            );
            println!("  measured:  {}", squash(m.measured));
            println!("  licence:   {}", m.licence);
            println!("  source:    {}", squash(m.source));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The text with its line-continuation runs of spaces folded to one.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
