//! `sepstream wav` (not built yet; see the open issues).

/// Options of `sepstream wav`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream wav` is not built yet")
}
