//! sepstream-nn: causal depthwise-separable convolutions that run one frame at a time.
//!
//! A [`Network`] is an immutable list of layers built from a [`ModelSpec`] (TOML) and
//! [`Weights`] (safetensors). Each stream has its own [`NetworkState`], allocated once; a
//! [`Network::step`] walks preallocated buffers and never allocates. [`Network::forward`] runs a
//! whole sequence at once with causal zero padding: it is the oracle the streaming path equals.

// The offline oracles index with plain loops on purpose: they are written to be read.
#![allow(clippy::needless_range_loop)]

mod build;
pub mod bundled;
pub mod compose;
pub mod cost;
pub mod ensemble;
pub mod error;
pub mod factorize;
pub mod kernels;
pub mod kind;
pub mod layers;
pub mod limits;
pub mod network;
pub mod shape;
pub mod spec;
pub mod weights;

pub use error::NnError;
pub use kind::LayerKind;
pub use layers::{Layer, LayerState, Op, StreamOp};
pub use limits::ModelLimits;
pub use network::{Network, NetworkState, WindowScratch};
pub use shape::{Activation, FrameShape};
pub use spec::{InputSpec, LayerSpec, ModelSpec, Size2};
pub use weights::{Tensor, Weights};
