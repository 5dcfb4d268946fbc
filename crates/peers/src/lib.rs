//! Peers of the sepstream DS-CNN: the same model and weights run by candle and by tract.
//!
//! Every peer computes the output that a window of input frames determines: its last output
//! frame, the posteriors of the newest hop. [`window_frames`] is the window that makes that
//! frame the one sepstream's streaming `step` emits on the window's newest frame.

pub mod candle_peer;
pub mod check;
pub mod onnx;
pub mod tract_peer;

pub use candle_peer::CandleNet;
pub use check::{agreement, max_abs_diff, test_frames, without_softmax, Agreement};
pub use onnx::{save_onnx, to_onnx, TimeAxis};
pub use tract_peer::{TractNet, TractPulse};

use sepstream_nn::{Layer, Network};

/// What can go wrong building or running a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("layer `{layer}` ({kind}) is not supported by the {peer} peer: {reason}")]
    Unsupported {
        peer: &'static str,
        layer: String,
        kind: sepstream_nn::LayerKind,
        reason: String,
    },
    #[error("the network has no layers")]
    Empty,
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tract: {0}")]
    Tract(String),
    #[error("input: {0}")]
    Input(String),
    #[error("sepstream: {0}")]
    Nn(#[from] sepstream_nn::NnError),
    #[error("writing {path}: {error}")]
    Io {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

pub(crate) fn unsupported(peer: &'static str, l: &Layer, reason: &str) -> PeerError {
    PeerError::Unsupported {
        peer,
        layer: l.name.clone(),
        kind: l.kind,
        reason: reason.to_string(),
    }
}

/// Input frames per hop window: the receptive field, rounded up so that the window's newest
/// frame starts a time stride (the offline forward starts its strides at the window's first
/// frame, the stream at frame 0). Then the window's last output frame is the one `step`
/// returns on the window's newest frame, and depends on all of the window but maybe its first
/// `time_stride - 1` frames.
pub fn window_frames(net: &Network) -> usize {
    let s = net.time_stride();
    (net.receptive_field() - 1).div_ceil(s) * s + 1
}
