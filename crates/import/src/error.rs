//! Typed errors of sepstream-import: each names the file, or the graph node and its op, and what was expected.

use std::path::PathBuf;

/// Everything that can stop an import. Nothing is written when one occurs.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The io error is part of the message (a printed chain says it once).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a {format} file: {message}")]
    Decode {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error(
        "{path}: unknown model format (expected a .pb frozen TensorFlow graph or an .onnx file)"
    )]
    UnknownFormat { path: PathBuf },
    #[error("node {node}: op {op} is not supported (supported: {expected})")]
    UnsupportedOp {
        node: String,
        op: String,
        expected: String,
    },
    #[error("node {node} ({op}): attribute `{attr}` = {value}, expected {expected}")]
    UnsupportedAttribute {
        node: String,
        op: String,
        attr: String,
        value: String,
        expected: String,
    },
    #[error("node {node} ({op}): tensor `{tensor}` has type {dtype}, expected {expected}")]
    NonFloatTensor {
        node: String,
        op: String,
        tensor: String,
        dtype: String,
        expected: String,
    },
    #[error("node {node} ({op}): dynamic shape: {detail}")]
    DynamicShape {
        node: String,
        op: String,
        detail: String,
    },
    #[error("node {node} ({op}): input `{input}` is not a constant; expected {expected}")]
    NotConstant {
        node: String,
        op: String,
        input: String,
        expected: String,
    },
    #[error("node {node} ({op}): {reason}")]
    Unsupported {
        node: String,
        op: String,
        reason: String,
    },
    #[error("graph: {0}")]
    Graph(String),
    #[error("the imported model does not build: {0}")]
    Model(#[from] sepstream_nn::NnError),
    #[error("the imported front end is not valid: {0}")]
    Frontend(#[from] sepstream_audio::AudioError),
}
