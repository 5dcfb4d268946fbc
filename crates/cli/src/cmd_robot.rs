//! `sepstream robot` (not built yet; see the open issues).

/// Options of `sepstream robot`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream robot` is not built yet")
}
