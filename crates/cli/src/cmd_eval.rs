//! `sepstream eval` (not built yet; see the open issues).

/// Options of `sepstream eval`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream eval` is not built yet")
}
