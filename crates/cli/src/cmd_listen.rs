//! `sepstream listen` (not built yet; see the open issues).

/// Options of `sepstream listen`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream listen` is not built yet")
}
