//! Models that ship inside the library and the binary (spec and weights compiled in), so they work from any folder.
//!
//! ```
//! let kws = sepstream_nn::bundled::find(sepstream_nn::bundled::DEFAULT_KEYWORD_MODEL).unwrap();
//! let net = kws.network().unwrap();
//! assert_eq!(net.spec().labels.len(), 12);
//! ```

use std::path::{Path, PathBuf};

use crate::error::NnError;
use crate::network::Network;
use crate::spec::ModelSpec;

/// A model compiled into the crate: its spec text, its safetensors bytes and where it came from.
#[derive(Debug)]
pub struct BundledModel {
    /// The name `--model` takes and [`find`] looks up.
    pub name: &'static str,
    /// What it is for.
    pub task: &'static str,
    /// The spec (TOML), as in `configs/`.
    pub spec_toml: &'static str,
    /// The weights (safetensors), as in `assets/`.
    pub weights: &'static [u8],
    /// How well it does where it was measured, with the measurement named.
    pub measured: &'static str,
    /// Licence of the weights.
    pub licence: &'static str,
    /// Who made it and how.
    pub source: &'static str,
}

impl BundledModel {
    /// The spec, parsed.
    pub fn spec(&self) -> Result<ModelSpec, NnError> {
        ModelSpec::from_toml_str_named(self.spec_toml, &self.origin())
    }

    /// The network with its weights.
    pub fn network(&self) -> Result<Network, NnError> {
        Network::from_spec_and_weights(self.spec()?, self.weights)
    }

    /// How the model is named in messages: `bundled:<name>`.
    pub fn origin(&self) -> PathBuf {
        PathBuf::from(format!("bundled:{}", self.name))
    }
}

/// The keyword model `sepstream wav`, `listen`, `eval` and `robot` use when given no `--model`.
pub const DEFAULT_KEYWORD_MODEL: &str = "kws";
/// The depth perception model `sepstream robot` and `bench` use by default.
pub const DEFAULT_DEPTH_MODEL: &str = "depth_sectors";

/// A Hello Edge DS-CNN imported by `sepstream import`: size (`s`, `m`, `l`), its upper-case
/// form, and its accuracy windowed and streamed on the Speech Commands test clips.
macro_rules! hello_edge {
    ($size:literal, $upper:literal, $windowed:literal, $streamed:literal) => {
        BundledModel {
            name: concat!("hello_edge_ds_cnn_", $size),
            task: "keyword spotting (yes no up down left right on off stop go), imported",
            spec_toml: include_str!(concat!(
                "../../../configs/hello_edge_ds_cnn_",
                $size,
                ".toml"
            )),
            weights: include_bytes!(concat!(
                "../../../assets/hello_edge_ds_cnn_",
                $size,
                ".safetensors"
            )),
            measured: concat!(
                $windowed,
                " accuracy one 1 s window per clip (as TensorFlow runs the graph; `eval \
                 --windowed`), ",
                $streamed,
                " streamed, on the 3,539 Speech Commands test clips (speakers it was not \
                 trained on)"
            ),
            licence: "Apache-2.0 (assets/hello_edge_LICENSE.md)",
            source: concat!(
                "DS-CNN-",
                $upper,
                " of Hello Edge (Zhang, Suda, Lai, Chandra 2017; Arm ML-KWS-for-MCU), trained \
                 on Speech Commands v0.01, imported from DS_CNN_",
                $upper,
                ".pb by sepstream import"
            ),
        }
    };
}

/// Every bundled model.
pub static BUNDLED: &[BundledModel] = &[
    BundledModel {
        name: DEFAULT_KEYWORD_MODEL,
        task: "keyword spotting (yes no up down left right on off stop go)",
        spec_toml: include_str!("../../../configs/kws.toml"),
        weights: include_bytes!("../../../assets/kws.safetensors"),
        measured: "0.8458 accuracy on 778 clips of 104 held-out speakers (Speech Commands test \
                   set, 20% speaker split, seed 1); 6.2 events per hour on 29 min of LibriSpeech \
                   read speech",
        licence: "MIT OR Apache-2.0",
        source: "kws_tc_10ms_x5 model 3.0 (2026-12-03): five 1D time-channel separable networks \
                 merged into one, trained by sepstream train on Speech Commands (CC BY 4.0) \
                 clips, with LibriSpeech (CC BY 4.0) read speech, Picovoice wake-phrase \
                 recordings (Apache-2.0) and Mycroft words (public domain) as negatives",
    },
    BundledModel {
        name: DEFAULT_DEPTH_MODEL,
        task: "depth perception (nearest obstacle per sector of a depth image)",
        spec_toml: include_str!("../../../configs/depth_sectors.toml"),
        weights: include_bytes!("../../../assets/depth_sectors.safetensors"),
        measured: "not trained: weights designed by hand for a level camera 0.25 m above the \
                   floor; tested on simulated depth frames",
        licence: "MIT OR Apache-2.0",
        source: "depth_sectors: weights written by hand (separable 2D, row-streamed)",
    },
    hello_edge!("s", "S", "0.8808", "0.8432"),
    hello_edge!("m", "M", "0.8884", "0.8200"),
    hello_edge!("l", "L", "0.9053", "0.8613"),
];

/// The bundled model called `name`.
pub fn find(name: &str) -> Option<&'static BundledModel> {
    BUNDLED.iter().find(|m| m.name == name)
}

/// The names of all bundled models, comma-separated (for messages).
pub fn names() -> String {
    BUNDLED
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a model comes from: a spec file, or a bundled model by name.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// A spec file with the weights file it names.
    File(PathBuf),
    /// A model compiled in.
    Bundled(&'static BundledModel),
}

impl ModelSource {
    /// `arg` as a spec file if one exists there, else as a bundled model's name; an error that
    /// says both when it is neither.
    pub fn resolve(arg: &Path) -> Result<Self, NnError> {
        if arg.is_file() {
            return Ok(ModelSource::File(arg.to_path_buf()));
        }
        if let Some(m) = arg.to_str().and_then(find) {
            return Ok(ModelSource::Bundled(m));
        }
        Err(NnError::UnknownModel {
            name: arg.to_path_buf(),
            bundled: names(),
        })
    }

    /// The spec and weights, as a network.
    pub fn network(&self) -> Result<Network, NnError> {
        match self {
            ModelSource::File(p) => Network::load(p),
            ModelSource::Bundled(m) => m.network(),
        }
    }

    /// How to name the model in messages: the path, or `bundled:<name>`.
    pub fn display_name(&self) -> String {
        match self {
            ModelSource::File(p) => p.display().to_string(),
            ModelSource::Bundled(m) => m.origin().display().to_string(),
        }
    }
}
