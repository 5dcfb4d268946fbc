//! The keyword model bundle: network, front end and decision settings, checked against each other.

use std::path::Path;
use std::sync::Arc;

use sepstream_audio::{DecisionConfig, FrontendConfig};
use sepstream_nn::{ModelSpec, Network};

use crate::confirm::Confirm;
use crate::error::KwsError;

/// The front end and decision settings of a spec: its `[frontend]` and `[decision]` tables,
/// validated; an absent table (or key) takes the audio crate's defaults
/// ([`FrontendConfig::default`], [`DecisionConfig::default`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSettings {
    /// The feature definition.
    pub frontend: FrontendConfig,
    /// The keyword decision settings.
    pub decision: DecisionConfig,
}

impl ModelSettings {
    /// Reads and validates the spec's two tables.
    pub fn from_spec(spec: &ModelSpec) -> Result<Self, KwsError> {
        let settings = |source| KwsError::Settings {
            model: spec.name.clone(),
            source,
        };
        let frontend = match &spec.frontend {
            Some(t) => FrontendConfig::from_table(t).map_err(settings)?,
            None => FrontendConfig::default(),
        };
        let decision = match &spec.decision {
            Some(t) => DecisionConfig::from_table(t).map_err(settings)?,
            None => DecisionConfig::default(),
        };
        Ok(ModelSettings { frontend, decision })
    }
}

/// Seconds between posterior frames of `net` fed by `frontend`: the front end's hop times the
/// network's time stride.
pub(crate) fn posterior_period(net: &Network, frontend: &FrontendConfig) -> f64 {
    net.time_stride().max(1) as f64 / frontend.frame_rate()
}

/// Checks that `net` reads the frames `frontend` makes.
pub(crate) fn check_features(net: &Network, frontend: &FrontendConfig) -> Result<(), KwsError> {
    let features = frontend.feature_len();
    let inputs = net.input_shape().len();
    if inputs != features {
        return Err(KwsError::Features {
            model: net.spec().name.clone(),
            inputs,
            features,
        });
    }
    Ok(())
}

/// The seed of the random weights [`KwsModel::load`] gives a spec whose weights file is absent.
pub const RANDOM_WEIGHTS_SEED: u64 = 1;

/// A keyword model ready to run: network, front end, decision settings, labels.
#[derive(Clone)]
pub struct KwsModel {
    /// The network (shared, immutable); its spec is [`KwsModel::spec`].
    pub net: Arc<Network>,
    /// Front end settings (the spec's `[frontend]`, defaults when absent).
    pub frontend: FrontendConfig,
    /// Decision settings (the spec's `[decision]`, defaults when absent).
    pub decision: DecisionConfig,
    /// Output labels.
    pub labels: Vec<String>,
    /// Whether the weights are random (no trained weights were found).
    pub random: bool,
    /// The second-stage check the spec's `[decision.confirm]` names, loaded.
    pub confirm: Option<Arc<Confirm>>,
}

impl KwsModel {
    /// Builds the model around a network: reads the spec's settings and checks that the network
    /// reads the front end's frames and gives one posterior per label.
    /// A `[decision.confirm]` model named by a spec file is looked for in the current folder
    /// ([`KwsModel::from_network_in`] names the spec's folder).
    pub fn from_network(net: Network, random: bool) -> Result<Self, KwsError> {
        Self::from_network_in(net, random, None)
    }

    /// [`KwsModel::from_network`], resolving a `[decision.confirm]` spec file relative to
    /// `base` (the folder of the spec the network came from).
    pub fn from_network_in(
        net: Network,
        random: bool,
        base: Option<&Path>,
    ) -> Result<Self, KwsError> {
        let spec = net.spec();
        let ModelSettings { frontend, decision } = ModelSettings::from_spec(spec)?;
        let outputs = net.output_shape().len();
        if outputs != spec.labels.len() {
            return Err(KwsError::Labels {
                model: spec.name.clone(),
                outputs,
                labels: spec.labels.len(),
            });
        }
        check_features(&net, &frontend)?;
        let confirm = match &decision.confirm {
            Some(c) => Some(Arc::new(Confirm::load(c, base, &net)?)),
            None => None,
        };
        Ok(KwsModel {
            labels: spec.labels.clone(),
            net: Arc::new(net),
            frontend,
            decision,
            random,
            confirm,
        })
    }

    /// Loads a spec and its trained weights. With `random_if_missing`, a spec whose weights file
    /// is absent gets deterministic random weights instead (seed [`RANDOM_WEIGHTS_SEED`]; plumbing
    /// runs, detections are meaningless).
    pub fn load(spec_path: &Path, random_if_missing: bool) -> Result<Self, KwsError> {
        let model_error = |source| KwsError::Model {
            origin: spec_path.display().to_string(),
            source,
        };
        let spec = ModelSpec::load(spec_path).map_err(model_error)?;
        let weights_present = spec.weights.as_ref().is_some_and(|w| {
            let p = spec_path.parent().unwrap_or(Path::new(".")).join(w);
            p.is_file()
        });
        let base = spec_path.parent();
        if !weights_present && random_if_missing {
            let net = Network::random(spec, RANDOM_WEIGHTS_SEED).map_err(model_error)?;
            return Self::from_network_in(net, true, base);
        }
        let net = Network::load(spec_path).map_err(model_error)?;
        Self::from_network_in(net, false, base)
    }

    /// The keyword model compiled into the library (`sepstream_nn::bundled`, the one `sepstream
    /// wav` and `listen` use by default): one call, no files needed.
    pub fn bundled_default() -> Result<Self, KwsError> {
        Self::bundled(sepstream_nn::bundled::DEFAULT_KEYWORD_MODEL)
    }

    /// The bundled model called `name` (`sepstream models` lists them).
    pub fn bundled(name: &str) -> Result<Self, KwsError> {
        let model = sepstream_nn::bundled::find(name).ok_or_else(|| KwsError::NotBundled {
            name: name.to_string(),
        })?;
        let net = model.network().map_err(|source| KwsError::Model {
            origin: format!("bundled:{name}"),
            source,
        })?;
        Self::from_network(net, false)
    }

    /// The spec the network was built from.
    pub fn spec(&self) -> &ModelSpec {
        self.net.spec()
    }

    /// Seconds between posterior frames (front end hop times the network's time stride).
    pub fn posterior_period(&self) -> f64 {
        posterior_period(&self.net, &self.frontend)
    }
}
