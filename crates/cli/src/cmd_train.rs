//! `sepstream train` (not built yet; see the open issues).

/// Options of `sepstream train`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream train` is not built yet")
}
