//! sepstream-train: training keyword models on Speech Commands-layout folders and exporting them for sepstream-nn.

pub mod augment;
pub mod dataset;
pub mod evaluate;
#[cfg(feature = "train")]
pub mod export;
#[cfg(feature = "train")]
pub mod model;
pub mod negatives;
#[cfg(feature = "train")]
pub mod trainer;

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading data, training or exporting.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("data: {0}")]
    Data(String),
    /// Audio that cannot be read or resampled (the error names the file where there is one).
    #[error(transparent)]
    Audio(#[from] sepstream_audio::AudioError),
    #[error("model spec: {0}")]
    Spec(String),
    #[error("export: {0}")]
    Export(String),
    #[cfg(feature = "train")]
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Nn(#[from] sepstream_nn::NnError),
    /// A keyword model's settings, or the spotter made for it.
    #[error(transparent)]
    Kws(Box<sepstream_kws::KwsError>),
}

impl From<sepstream_kws::KwsError> for TrainError {
    fn from(e: sepstream_kws::KwsError) -> Self {
        TrainError::Kws(Box::new(e))
    }
}

impl TrainError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}
