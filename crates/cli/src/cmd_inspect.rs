//! `sepstream inspect`, `sepstream cost` and `sepstream factorize` (not built yet).

/// Options of `sepstream inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {}
/// Options of `sepstream cost`.
#[derive(clap::Args)]
pub struct CostArgs {}
/// Options of `sepstream factorize`.
#[derive(clap::Args)]
pub struct FactorizeArgs {}

pub fn run_inspect(_a: InspectArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream inspect` is not built yet")
}
pub fn run_cost(_a: CostArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream cost` is not built yet")
}
pub fn run_factorize(_a: FactorizeArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`sepstream factorize` is not built yet")
}
