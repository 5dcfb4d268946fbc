//! `sepstream devices` (not built yet; see the open issues).

/// Options of `sepstream devices`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream devices` is not built yet")
}
