//! `--model` arguments: a spec file, or the name of a model compiled into the binary (`sepstream models`).

use std::path::Path;

use anyhow::Context;
use sepstream_nn::bundled::ModelSource;
use sepstream_nn::Network;

/// The model `arg` names (a spec file or a bundled name), or the bundled `default`; with the
/// name to show in messages.
pub fn network(arg: Option<&Path>, default: &str) -> anyhow::Result<(Network, String)> {
    let source = match arg {
        Some(a) => ModelSource::resolve(a)?,
        None => ModelSource::resolve(Path::new(default))?,
    };
    let name = source.display_name();
    let net = source
        .network()
        .with_context(|| format!("loading model {name}"))?;
    Ok((net, name))
}

/// The keyword model `arg` names, or the bundled default keyword model.
pub fn keyword_network(arg: Option<&Path>) -> anyhow::Result<(Network, String)> {
    network(arg, sepstream_nn::bundled::DEFAULT_KEYWORD_MODEL)
}
