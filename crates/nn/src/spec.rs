//! The model spec: a TOML description of a model's input, layers, labels and front end.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::NnError;
use crate::kind::LayerKind;
use crate::limits::{at_most, toml_nesting_depth, ModelLimits};
use crate::shape::Activation;

/// A whole model: what it reads, its layers in order, and what its outputs mean.
/// Unknown keys anywhere are errors. `frontend` and `decision` are kept as tables for the crates
/// that own them (sepstream-audio parses them with its own strict types).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The safetensors file with the weights, relative to the spec file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// How the weights were obtained (trained, designed by hand, random).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// Output labels, one per output value of the last layer (empty when outputs are not classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    pub input: InputSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<toml::Table>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<toml::Table>,
    pub layers: Vec<LayerSpec>,
}

/// What one input frame is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub width: usize,
    pub channels: usize,
    /// Input frames per second (audio: 1 / hop; camera: rows per second or frames per second).
    pub frame_rate: f64,
}

/// A kernel, stride or size along (time, width): one integer for 1D layers, a pair for 2D.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    One(usize),
    Two([usize; 2]),
}

impl Size2 {
    /// (time, width); a single integer means (n, 1) for 1D layers and (n, n) for 2D layers.
    pub fn pair(self, two_d: bool) -> (usize, usize) {
        match self {
            Size2::One(n) if two_d => (n, n),
            Size2::One(n) => (n, 1),
            Size2::Two([a, b]) => (a, b),
        }
    }
}

/// One layer as written in the spec. Which fields a kind accepts is checked when the model is
/// built (an irrelevant field is an error, not silently ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Name used for the layer's tensors in the weights file; defaults to `<kind><index>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: LayerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_channels: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Size2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Size2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// A centred kernel run causally: the layer reports a delay of (k_t - 1) * dilation / 2 frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centered: Option<bool>,
    /// Convolutions: zero columns before the first input column along the width (default
    /// `(k_w - 1) / 2`; at most `k_w - 1`). TensorFlow's 'SAME' padding pads
    /// `floor(total / 2)` on the left, which is less than the default for some strides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_left: Option<usize>,
    /// avgpool: how many frames the running mean covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
    /// dense: number of outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<usize>,
    /// pointwise and the pointwise half of separable1d/2d: channel groups (default 1); output
    /// group g mixes only input group g, and the weight is [C_out, C_in / groups].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
}

impl ModelSpec {
    /// Parses a spec from TOML text; `origin` names the source in errors. The text's size, its
    /// TOML nesting and the number of layers are checked against [`ModelLimits::DEFAULT`]
    /// (the nesting before parsing, since the parser recurses).
    pub fn from_toml_str_named(text: &str, origin: &Path) -> Result<Self, NnError> {
        let limits = ModelLimits::DEFAULT;
        at_most(
            origin,
            "the spec size in bytes",
            text.len() as u128,
            limits.max_spec_bytes,
        )?;
        at_most(
            origin,
            "the TOML nesting depth",
            toml_nesting_depth(text) as u128,
            limits.max_toml_nesting,
        )?;
        check_kinds(text)?;
        let spec: Self = toml::from_str(text).map_err(|e| NnError::SpecSyntax {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        at_most(
            origin,
            "the number of layers",
            spec.layers.len() as u128,
            limits.max_layers,
        )?;
        Ok(spec)
    }

    /// Parses a spec from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, NnError> {
        Self::from_toml_str_named(text, Path::new("<string>"))
    }

    /// Reads and parses a spec file (its size is checked before it is read).
    pub fn load(path: &Path) -> Result<Self, NnError> {
        let io_error = |error| NnError::Io {
            path: path.to_path_buf(),
            error,
        };
        let size = std::fs::metadata(path).map_err(io_error)?.len();
        at_most(
            path,
            "the spec size in bytes",
            size as u128,
            ModelLimits::DEFAULT.max_spec_bytes,
        )?;
        let text = std::fs::read_to_string(path).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        Self::from_toml_str_named(&text, path)
    }

    /// The spec as TOML text (what `load` reads back).
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a ModelSpec always serializes")
    }

    /// Writes the spec as TOML.
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        std::fs::write(path, self.to_toml_string()).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            error: source,
        })
    }

    /// Writes a model: `weights` to `weights_path` (a path as the caller sees it; its folder is
    /// made if missing) and this spec to `spec_path`, naming the weights relative to the spec's
    /// folder. The network is built from both first, so a spec and weights that disagree are an
    /// error before anything is written; both files are written beside their targets and renamed
    /// into place, so a failure leaves neither half behind. Returns the spec as written.
    pub fn save_bundle(
        &self,
        weights: &crate::Weights,
        spec_path: &Path,
        weights_path: &Path,
    ) -> Result<ModelSpec, NnError> {
        let mut spec = self.clone();
        let dir = spec_path.parent().unwrap_or(Path::new("."));
        spec.weights = Some(relative_path(weights_path, dir));
        crate::Network::from_spec_and_tensors(spec.clone(), weights)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| NnError::Io { path, error }
        };
        if let Some(d) = weights_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let tmp_w = weights_path.with_extension("safetensors.partial");
        let tmp_s = spec_path.with_extension("toml.partial");
        let result = (|| {
            std::fs::write(&tmp_w, weights.to_safetensors()).map_err(io(weights_path))?;
            std::fs::write(&tmp_s, spec.to_toml_string()).map_err(io(spec_path))?;
            std::fs::rename(&tmp_w, weights_path).map_err(io(weights_path))?;
            std::fs::rename(&tmp_s, spec_path).map_err(io(spec_path))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp_w);
            let _ = std::fs::remove_file(&tmp_s);
        }
        result.map(|()| spec)
    }

    /// The weights path resolved against the directory of the spec file at `spec_path`.
    pub fn weights_path(&self, spec_path: &Path) -> Option<PathBuf> {
        self.weights.as_ref().map(|w| {
            if w.is_absolute() {
                w.clone()
            } else {
                spec_path.parent().unwrap_or(Path::new(".")).join(w)
            }
        })
    }
}

/// `to` as a path relative to the folder `from_dir` (both taken from the current folder when
/// relative; `..` where they part).
pub fn relative_path(to: &Path, from_dir: &Path) -> PathBuf {
    let abs = |p: &Path| {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        p.components().fold(PathBuf::new(), |mut acc, c| {
            match c {
                std::path::Component::ParentDir => {
                    acc.pop();
                }
                std::path::Component::CurDir => {}
                c => acc.push(c),
            }
            acc
        })
    };
    let (to, from) = (abs(to), abs(from_dir));
    let common = to
        .components()
        .zip(from.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in from.components().skip(common) {
        rel.push("..");
    }
    for c in to.components().skip(common) {
        rel.push(c);
    }
    rel
}

/// An unknown `kind` in the text is an error naming the layer (its `name`, or `<kind><index>`)
/// and every known kind, before the typed parse would report it without the layer.
fn check_kinds(text: &str) -> Result<(), NnError> {
    let Ok(table) = text.parse::<toml::Table>() else {
        // the typed parse reports the syntax error with its position
        return Ok(());
    };
    let Some(layers) = table.get("layers").and_then(toml::Value::as_array) else {
        return Ok(());
    };
    for (index, layer) in layers.iter().enumerate() {
        let Some(kind) = layer.get("kind").and_then(toml::Value::as_str) else {
            continue;
        };
        if kind.parse::<LayerKind>().is_err() {
            let name = layer.get("name").and_then(toml::Value::as_str);
            return Err(NnError::UnknownLayerKind {
                layer: name.map_or_else(|| format!("{kind}{index}"), str::to_string),
                kind: kind.to_string(),
                known: LayerKind::known(),
            });
        }
    }
    Ok(())
}

impl LayerSpec {
    /// A layer spec of the given kind with every option unset.
    pub fn new(kind: LayerKind) -> Self {
        Self {
            name: None,
            kind,
            out_channels: None,
            kernel: None,
            stride: None,
            dilation: None,
            activation: None,
            centered: None,
            pad_left: None,
            frames: None,
            units: None,
            groups: None,
        }
    }
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
    pub fn out_channels(mut self, c: usize) -> Self {
        self.out_channels = Some(c);
        self
    }
    pub fn kernel(mut self, k: Size2) -> Self {
        self.kernel = Some(k);
        self
    }
    pub fn stride(mut self, s: Size2) -> Self {
        self.stride = Some(s);
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = Some(d);
        self
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = Some(a);
        self
    }
    pub fn centered(mut self, c: bool) -> Self {
        self.centered = Some(c);
        self
    }
    pub fn pad_left(mut self, pad: usize) -> Self {
        self.pad_left = Some(pad);
        self
    }
    pub fn frames(mut self, n: usize) -> Self {
        self.frames = Some(n);
        self
    }
    pub fn units(mut self, n: usize) -> Self {
        self.units = Some(n);
        self
    }
    pub fn groups(mut self, n: usize) -> Self {
        self.groups = Some(n);
        self
    }
}
