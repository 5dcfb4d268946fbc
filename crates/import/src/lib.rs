//! sepstream-import: turns keyword models trained elsewhere (frozen TensorFlow graphs, ONNX files) into a sepstream spec + safetensors.
//!
//! [`import_path`] reads a `.pb` or `.onnx` file and gives an [`Imported`] model: a
//! [`ModelSpec`] (with the graph's front end as `[frontend]` when the graph holds one) and its
//! [`Weights`]. Batch norm and constant scales/shifts are folded into the convolutions; 'SAME'
//! padding in time becomes `centered = true` (run causally, with the delay it reports); 'SAME'
//! padding in width becomes the layer's `pad_left`. [`Imported::write`] checks that the model
//! builds before it writes anything.

pub mod error;
mod lower;
pub mod onnx;
pub mod onnx_proto;
pub mod tf;
pub mod tf_proto;

use std::path::Path;

use sepstream_audio::{DecisionConfig, FrontendConfig};
use sepstream_nn::{InputSpec, ModelSpec, Network, Weights};

pub use error::ImportError;

/// The front end a TensorFlow graph computes itself (`AudioSpectrogram` + `Mfcc`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FrontendSpec {
    pub sample_rate: u32,
    pub window: usize,
    pub hop: usize,
    pub n_fft: usize,
    pub n_mels: usize,
    pub f_min: f32,
    pub f_max: f32,
    pub n_mfcc: usize,
    /// Seconds of audio the graph classifies at once (`DecodeWav` `desired_samples`).
    pub window_seconds: f64,
}

/// What an importer read from a graph: the op chain and the input it expects.
pub(crate) struct Graph {
    pub steps: Vec<lower::Step>,
    /// Input frame: width and channels.
    pub width: usize,
    pub channels: usize,
    /// Frames along time the graph sees at once.
    pub window_frames: usize,
    pub frontend: Option<FrontendSpec>,
    /// Which axis of the graph's layout is time, for the spec's description.
    pub time_axis: &'static str,
}

/// Checks that 'SAME'-style time padding (`pad_before` frames before a window of `t`) is the
/// engine's centred padding, `(k - 1) * d / 2` frames before.
pub(crate) fn centered_pad(
    node: &str,
    op: &str,
    pad_before: usize,
    k: usize,
    d: usize,
    t: usize,
) -> Result<(), ImportError> {
    let engine = (k - 1) * d / 2;
    if k > 1 && pad_before != engine {
        return Err(ImportError::Unsupported {
            node: node.to_string(),
            op: op.to_string(),
            reason: format!(
                "its padding in time puts {pad_before} zero frames before a window of {t} \
                 frames; a centred layer (kernel {k}, dilation {d}) puts {engine}"
            ),
        });
    }
    Ok(())
}

/// Options of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The model's name (default: the file stem).
    pub name: Option<String>,
    /// Sample rate of the audio a graph with its own front end reads (TensorFlow's `Mfcc`
    /// takes it from the WAV at run time; default 16000).
    pub sample_rate: u32,
    /// Output labels (default: `labels.txt` beside the model, one per line, if present).
    pub labels: Option<Vec<String>>,
    /// The output node (default: `labels_softmax`, else the one node nothing consumes).
    pub output: Option<String>,
    /// Input frames per second for a graph that takes features (no front end in the graph).
    pub frame_rate: Option<f64>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            name: None,
            sample_rate: 16000,
            labels: None,
            output: None,
            frame_rate: None,
        }
    }
}

/// An imported model: its spec and weights.
#[derive(Clone, Debug)]
pub struct Imported {
    pub spec: ModelSpec,
    pub weights: Weights,
}

/// Imports a `.pb` (frozen TensorFlow GraphDef) or `.onnx` file.
pub fn import_path(path: &Path, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let bytes = std::fs::read(path).map_err(|error| ImportError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    import_bytes(&bytes, path, opts)
}

/// Imports a model already in memory; `path` names it in messages, its extension (`.pb` or
/// `.onnx`) says the format, and `labels.txt` beside it gives the labels unless `opts` has them.
pub fn import_bytes(
    bytes: &[u8],
    path: &Path,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let (graph, format) = match ext.as_deref() {
        Some("pb") => (
            tf::lower(bytes, path, opts.sample_rate, opts.output.as_deref())?,
            "frozen TensorFlow graph",
        ),
        Some("onnx") => (onnx::lower(bytes, path, opts.output.as_deref())?, "ONNX"),
        _ => {
            return Err(ImportError::UnknownFormat {
                path: path.to_path_buf(),
            })
        }
    };
    let name = opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map_or("imported".into(), |s| s.to_string_lossy().into_owned())
    });
    let labels = match &opts.labels {
        Some(l) => l.clone(),
        None => read_labels(&path.with_file_name("labels.txt"))?,
    };
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    build(graph, &name, labels, &file, format, opts.frame_rate)
}

fn read_labels(path: &Path) -> Result<Vec<String>, ImportError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|error| ImportError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn build(
    graph: Graph,
    name: &str,
    labels: Vec<String>,
    file: &str,
    format: &str,
    frame_rate: Option<f64>,
) -> Result<Imported, ImportError> {
    let (layers, weights) = lower::to_layers(graph.steps)?;
    let (frontend, frame_rate, window_s) = match &graph.frontend {
        Some(fe) => {
            let mut t = toml::Table::new();
            t.insert("sample_rate".into(), (fe.sample_rate as i64).into());
            t.insert("window".into(), (fe.window as i64).into());
            t.insert("hop".into(), (fe.hop as i64).into());
            t.insert("n_fft".into(), (fe.n_fft as i64).into());
            t.insert("n_mels".into(), (fe.n_mels as i64).into());
            t.insert("f_min".into(), (fe.f_min as f64).into());
            t.insert("f_max".into(), (fe.f_max as f64).into());
            t.insert("mel_scale".into(), "tf".into());
            t.insert("spectrum".into(), "magnitude".into());
            t.insert("dct".into(), "tf".into());
            t.insert("log_floor".into(), 1e-12.into());
            t.insert("n_mfcc".into(), (fe.n_mfcc as i64).into());
            let cfg = FrontendConfig::from_table(&t)?;
            (Some(t), cfg.frame_rate(), fe.window_seconds)
        }
        None => {
            let rate = frame_rate.unwrap_or(100.0);
            (None, rate, graph.window_frames as f64 / rate)
        }
    };
    let mut spec = ModelSpec {
        name: name.to_string(),
        description: Some(format!(
            "Imported from {file} ({format}); time is the graph's {}. Trained on fixed \
             windows of {} frames with zero padding on both sides in time: run causally, each \
             such layer reports its delay (`centered`)",
            graph.time_axis, graph.window_frames
        )),
        weights: None,
        provenance: Some(format!(
            "sepstream import of {file}: the graph's own weights, batch norm and constant \
             scales folded into the convolutions"
        )),
        labels,
        input: InputSpec {
            width: graph.width,
            channels: graph.channels,
            frame_rate,
        },
        frontend,
        decision: None,
        layers,
    };
    let net = Network::from_spec_and_tensors(spec.clone(), &weights)?;
    let delay_s = net.delay() as f64 / frame_rate;
    let decision = DecisionConfig {
        window: (window_s * 1e6).round() / 1e6,
        clip_tail: ((delay_s * 100.0).round() / 100.0).min(2.0),
        ..DecisionConfig::default()
    };
    decision.validate()?;
    let mut d = toml::Table::new();
    d.insert("window".into(), decision.window.into());
    d.insert("clip_tail".into(), decision.clip_tail.into());
    spec.decision = Some(d);
    Ok(Imported { spec, weights })
}

/// `to` as a path relative to the directory `from` (both made absolute against the current
/// directory), for the spec's `weights` entry.
impl Imported {
    /// The network of the imported spec and weights.
    pub fn network(&self) -> Result<Network, ImportError> {
        Ok(Network::from_spec_and_tensors(
            self.spec.clone(),
            &self.weights,
        )?)
    }

    /// Writes the weights to `weights_path` and the spec (naming them relative to itself) to
    /// `spec_path` ([`ModelSpec::save_bundle`]: the model is built first; on any failure nothing
    /// is left behind).
    pub fn write(&self, spec_path: &Path, weights_path: &Path) -> Result<ModelSpec, ImportError> {
        Ok(self
            .spec
            .save_bundle(&self.weights, spec_path, weights_path)?)
    }
}
