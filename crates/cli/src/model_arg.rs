//! `--model` arguments: a spec file, or the name of a model compiled into the binary (`sepstream models`).

use std::path::Path;

use anyhow::Context;
use sepstream_kws::KwsModel;
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

/// The keyword model `arg` names (or the bundled default) with its front end and decision
/// settings, checked against each other; with the name to show in messages.
pub fn keyword_model(arg: Option<&Path>) -> anyhow::Result<(KwsModel, String)> {
    let (net, name) = keyword_network(arg)?;
    let model =
        KwsModel::from_network(net, false).with_context(|| format!("keyword model {name}"))?;
    Ok((model, name))
}
