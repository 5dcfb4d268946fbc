//! ONNX files to the op chain: NCHW with H the time axis, W the width, C the channels.

use std::path::Path;

use crate::error::ImportError;
use crate::Graph;

/// Reads an ONNX model and lowers it to the op chain.
pub(crate) fn lower(
    _bytes: &[u8],
    path: &Path,
    _output: Option<&str>,
) -> Result<Graph, ImportError> {
    Err(ImportError::UnknownFormat {
        path: path.to_path_buf(),
    })
}
