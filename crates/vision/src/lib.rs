//! sepstream-vision: camera and depth frames, a simulated depth camera, row-streaming 2D networks.
//!
//! - [`frame`]: depth (f32 metres / u16 millimetres) and camera (grey / RGB) frames, row access.
//! - [`source`]: image-file sequences (PNG / PGM) and the simulated camera as frame sources.
//! - [`geometry`]: pinhole intrinsics, depth pixel -> 3D point, camera mount, robot poses.
//! - [`world`], [`camera`]: a floor / walls / boxes world and a ray-casting depth camera.
//! - [`rowstream`]: a 2D network fed row by row as a sensor reads out, equal to the offline pass.
//! - [`perception`]: the depth network's output read as nearest obstacle per sector.
//! - [`latest`]: lock-free latest-value handoff (triple buffer) between threads.
//! - [`robot`], [`control`]: differential drive, the controller, the control-loop body.
//! - [`sim`], [`rt`]: the deterministic simulated-clock runner and the real-time runner.
//! - [`plot`] (feature `plot`): trajectory plots.

pub mod camera;
pub mod control;
pub mod frame;
pub mod geometry;
pub mod latest;
pub mod perception;
#[cfg(feature = "plot")]
pub mod plot;
pub mod robot;
pub mod rowstream;
pub mod rt;
pub mod sim;
pub mod source;
pub mod world;

use std::path::PathBuf;

/// The nalgebra this crate's geometry uses (poses are `nalgebra::Isometry2<f64>`).
pub use nalgebra;

pub use camera::{DepthNoise, SimDepthCamera};
pub use frame::{DepthEncoding, DepthFrame, DepthFrameMm, Frame, ImageFrame};
pub use geometry::{CameraMount, Intrinsics};
pub use perception::{DepthPerception, SectorReading};
pub use robot::{Controller, ControllerConfig, DiffDrive, RobotCommand};
pub use rowstream::{offline_frame, RowStreamer};
pub use world::{ObstacleKind, Prism, World, WorldParams};

/// Errors of this crate, each naming what failed and why.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A frame's value count does not match its shape.
    #[error("frame has {actual} values, expected {expected}")]
    FrameSize {
        /// Expected values.
        expected: usize,
        /// Actual values.
        actual: usize,
    },
    /// A row's length does not match the network's input row.
    #[error("row has {actual} values, the network takes {expected}")]
    RowLength {
        /// Expected values.
        expected: usize,
        /// Actual values.
        actual: usize,
    },
    /// An image file could not be read or written.
    #[error("image {path}: {message}")]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A file that should hold depth (16-bit grey) does not.
    #[error("{path}: not a depth image (expected 16-bit grey, millimetres)")]
    NotDepth {
        /// The file.
        path: PathBuf,
    },
    /// A file system error.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error (in the message, not a `source()`).
        error: std::io::Error,
    },
    /// The network engine refused something (spec, weights, shapes).
    #[error(transparent)]
    Nn(#[from] sepstream_nn::NnError),
    /// The perception spec is unusable.
    #[error("model spec `{name}`: {message}")]
    Spec {
        /// Spec name.
        name: String,
        /// Why.
        message: String,
    },
    /// A command script item is not `TIME:COMMAND`.
    #[error("command `{item}`: expected TIME:COMMAND with TIME >= 0 seconds and COMMAND one of go, stop, left, right")]
    CommandScript {
        /// The item.
        item: String,
    },
    /// A worker thread failed.
    #[error("thread: {0}")]
    Thread(String),
    /// Plotting failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}
