//! Typed errors of sepstream-pipeline: each names the stage, edge or file and the reason.

use std::sync::Arc;

/// An error a stage returns from `start`, `process` or `stop`; it stops the whole pipeline.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    /// What went wrong.
    pub message: String,
}

impl StageError {
    /// A stage error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        StageError {
            message: message.into(),
        }
    }
}

/// Errors of building or running a pipeline.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    /// The configuration is invalid.
    #[error("{origin}: {reason}")]
    Config {
        /// File (or other origin) of the configuration.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// An edge was wired against its policy (e.g. a capture source on a blocking edge).
    #[error("edge {edge:?}: {reason}")]
    Wiring {
        /// The edge.
        edge: String,
        /// What is wrong.
        reason: String,
    },
    /// A stage returned an error.
    #[error("stage {stage:?} failed: {message}")]
    StageFailed {
        /// The stage.
        stage: String,
        /// Its error.
        message: String,
    },
    /// A stage panicked.
    #[error("stage {stage:?} panicked: {message}")]
    StagePanicked {
        /// The stage.
        stage: String,
        /// The panic message.
        message: String,
    },
    /// Some stages did not stop within the grace period after a stop was requested.
    #[error("stages {stages:?} did not stop within {grace_ms} ms")]
    Hung {
        /// The stages still running.
        stages: Vec<String>,
        /// The grace period.
        grace_ms: u64,
    },
    /// The zenoh network could not be joined or used (the cause is zenoh's error).
    #[error("zenoh: {what}")]
    Network {
        /// What was being done.
        what: String,
        /// zenoh's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// Setting up a stage's resources failed (model, device...).
    #[error("{0}")]
    Setup(String),
}

impl PipelineError {
    /// The stage the error is about, if any.
    pub fn stage(&self) -> Option<&str> {
        match self {
            PipelineError::StageFailed { stage, .. }
            | PipelineError::StagePanicked { stage, .. } => Some(stage),
            _ => None,
        }
    }
}
