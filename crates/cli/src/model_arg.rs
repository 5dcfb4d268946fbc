//! `--model` arguments: a spec file, or the name of a model compiled into the binary (`sepstream models`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use std::sync::Arc;

use sepstream_kws::{Confirm, ConfirmConfig, KwsModel};
use sepstream_nn::bundled::ModelSource;
use sepstream_nn::Network;

/// The model `arg` names (a spec file or a bundled name), or the bundled `default`; with the
/// name to show in messages.
pub fn network(arg: Option<&Path>, default: &str) -> anyhow::Result<(Network, String)> {
    let (net, name, _) = network_with_folder(arg, default)?;
    Ok((net, name))
}

/// [`network`], with the folder of its spec file (`None` for a bundled model).
fn network_with_folder(
    arg: Option<&Path>,
    default: &str,
) -> anyhow::Result<(Network, String, Option<PathBuf>)> {
    let source = ModelSource::resolve(arg.unwrap_or(Path::new(default)))?;
    let name = source.display_name();
    let net = source
        .network()
        .with_context(|| format!("loading model {name}"))?;
    let folder = match &source {
        ModelSource::File(p) => p.parent().map(Path::to_path_buf),
        ModelSource::Bundled(_) => None,
    };
    Ok((net, name, folder))
}

/// The keyword model `arg` names (or the bundled default) with its front end and decision
/// settings, checked against each other, and the second-stage check its `[decision.confirm]`
/// names (a spec file beside the model's); with the name to show in messages.
pub fn keyword_model(arg: Option<&Path>) -> anyhow::Result<(KwsModel, String)> {
    let (net, name, folder) =
        network_with_folder(arg, sepstream_nn::bundled::DEFAULT_KEYWORD_MODEL)?;
    let model = KwsModel::from_network_in(net, false, folder.as_deref())
        .with_context(|| format!("keyword model {name}"))?;
    Ok((model, name))
}

/// Options for a second-stage check of keyword events, shared by the commands that spot
/// keywords.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConfirmArgs {
    /// Check every keyword event with a second model made for fixed windows (a bundled model's
    /// name, e.g. hello_edge_ds_cnn_l, or a spec file): it reads 1 s windows of the audio
    /// already heard, ending 0.2, 0.1 and 0 s before the event, and the event goes out only if
    /// the keyword is its first choice. Replaces the spec's [decision.confirm]; `none` turns
    /// that off.
    #[arg(long, value_name = "MODEL")]
    pub confirm: Option<String>,
    /// With a check: the keyword's posterior from the checking model (its highest over the
    /// windows) must also reach this (0..=1).
    #[arg(long, value_name = "P")]
    pub confirm_min_posterior: Option<f32>,
}

impl ConfirmArgs {
    /// Sets `model`'s check as these options say (the spec's own when they say nothing).
    pub fn apply(&self, model: &mut KwsModel) -> anyhow::Result<()> {
        let mut config = match self.confirm.as_deref() {
            Some("none") => {
                anyhow::ensure!(
                    self.confirm_min_posterior.is_none(),
                    "--confirm-min-posterior needs a check, but --confirm is none"
                );
                model.confirm = None;
                model.decision.confirm = None;
                return Ok(());
            }
            Some(m) => ConfirmConfig::with_model(m),
            None => match (&model.decision.confirm, self.confirm_min_posterior) {
                (_, None) => return Ok(()),
                (Some(c), Some(_)) => c.clone(),
                (None, Some(_)) => anyhow::bail!(
                    "--confirm-min-posterior needs a check: --confirm MODEL, or a model whose \
                     spec has [decision.confirm]"
                ),
            },
        };
        if let Some(p) = self.confirm_min_posterior {
            config.min_posterior = p;
        }
        config.validate().context("--confirm-min-posterior")?;
        let confirm = Confirm::load(&config, None, &model.net)
            .with_context(|| format!("--confirm {}", config.model))?;
        model.confirm = Some(Arc::new(confirm));
        model.decision.confirm = Some(config);
        Ok(())
    }
}

/// One line saying how events are checked, or `None` without a check.
pub fn describe_confirm(model: &KwsModel) -> Option<String> {
    let c = model.confirm.as_ref()?;
    let cfg = c.config();
    let ends: Vec<String> = cfg.ends.iter().map(|e| format!("{e}")).collect();
    Some(format!(
        "second-stage check: {} ({} frames per window, windows ending {} s from the event, \
         keyword first{}; about {:.1} MFLOPs per check)",
        c.name(),
        c.window_frames(),
        ends.join(", "),
        if cfg.min_posterior > 0.0 {
            format!(" and at least {}", cfg.min_posterior)
        } else {
            String::new()
        },
        c.flops_per_check() as f64 / 1e6
    ))
}
