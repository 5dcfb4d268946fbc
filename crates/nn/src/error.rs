//! Typed errors of sepstream-nn: every one names the file, layer or tensor it is about.

use std::path::PathBuf;

/// Everything that can go wrong loading or building a model.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// The io error is part of the message (not a `source()`, so a printed error chain says
    /// it once).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a valid model spec: {message}")]
    SpecSyntax { path: PathBuf, message: String },
    #[error("layer {layer}: unknown layer kind `{kind}` (known: {known})")]
    UnknownLayerKind {
        layer: String,
        kind: String,
        known: String,
    },
    #[error("layer {layer}: {reason}")]
    InvalidLayer { layer: String, reason: String },
    #[error("model spec: {0}")]
    InvalidSpec(String),
    #[error("layer {layer}: weights have no tensor `{tensor}`")]
    MissingTensor { layer: String, tensor: String },
    #[error("layer {layer}: tensor `{tensor}` has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        layer: String,
        tensor: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("layer {layer}: tensor `{tensor}` has dtype {dtype}, expected F32")]
    WrongDtype {
        layer: String,
        tensor: String,
        dtype: String,
    },
    #[error("weights: tensor `{tensor}` is not used by any layer of the spec")]
    UnusedTensor { tensor: String },
    #[error("{path}: not a valid safetensors file: {message}")]
    Weights { path: PathBuf, message: String },
    #[error(
        "model {name}: no such spec file, and no bundled model of that name (bundled: {bundled})"
    )]
    UnknownModel { name: PathBuf, bundled: String },
    /// A file asks for more than [`crate::ModelLimits`] allows; raised before the allocation.
    #[error("{path}: {what} is {value}, more than the limit of {limit}")]
    LimitExceeded {
        path: PathBuf,
        what: String,
        value: u128,
        limit: u128,
    },
    /// A streaming input frame of the wrong length ([`crate::Network::try_step`]).
    #[error("model {model}: input frame of {actual} values, the model takes {expected}")]
    FrameLength {
        model: String,
        expected: usize,
        actual: usize,
    },
    #[error("model spec {path} names no weights file (add `weights = \"...\"`)")]
    NoWeights { path: PathBuf },
}
