//! `sepstream bench` (not built yet; see the open issues).

/// Options of `sepstream bench`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream bench` is not built yet")
}
