//! Export: the trained model as a sepstream-nn spec (TOML, with the front end's normalisation and the
//! decision settings) plus its safetensors weights, BatchNorm folded in.

use std::path::Path;

use sepstream_audio::FrontendConfig;
use sepstream_nn::ModelSpec;

use crate::trainer::Trained;
use crate::TrainError;

/// The spec of a trained model: `template` with the trained front end, `weights` pointing at
/// `weights_rel` (relative to the spec file) and a provenance line.
pub fn trained_spec(
    template: &ModelSpec,
    trained: &Trained,
    weights_rel: &Path,
    provenance: &str,
) -> Result<ModelSpec, TrainError> {
    let mut spec = spec_with_frontend(template, &trained.frontend)?;
    spec.weights = Some(weights_rel.to_path_buf());
    spec.provenance = Some(provenance.to_string());
    Ok(spec)
}

/// `template` with the 12 labels and `frontend` (the run's, with its normalisation) as its
/// `[frontend]` table; no weights file.
pub fn spec_with_frontend(
    template: &ModelSpec,
    frontend: &FrontendConfig,
) -> Result<ModelSpec, TrainError> {
    let mut spec = template.clone();
    spec.weights = None;
    spec.labels = crate::dataset::labels();
    let table = toml::Table::try_from(frontend)
        .map_err(|e| TrainError::Export(format!("frontend table: {e}")))?;
    spec.frontend = Some(table);
    Ok(spec)
}

/// Writes `spec_path` (TOML) and the weights file its `weights` names
/// ([`ModelSpec::save_bundle`]: checked first, nothing half-written on failure).
pub fn write(spec: &ModelSpec, trained: &Trained, spec_path: &Path) -> Result<(), TrainError> {
    let rel = spec
        .weights
        .as_ref()
        .ok_or_else(|| TrainError::Export("spec has no weights path".into()))?;
    let wpath = spec_path.parent().unwrap_or(Path::new(".")).join(rel);
    let bytes = trained.model.export_safetensors()?;
    let weights = sepstream_nn::Weights::from_safetensors(&bytes, &wpath)?;
    spec.save_bundle(&weights, spec_path, &wpath)?;
    Ok(())
}
