//! sepstream-pipeline: stages on threads joined by bounded crossbeam channels, with deadlines and overload policy.
//!
//! - [`Pipeline`]: wire [`Source`]s and [`Stage`]s with named edges whose capacity and
//!   [`OverloadPolicy`] come from [`PipelineConfig`] (configs/pipeline.toml), then start it;
//!   [`Running::shutdown`] stops cleanly and reports the first stage error or panic.
//! - [`CaptureSource`]: microphone (cpal -> SPSC ring, see `sepstream_audio::mic`) or a simulated
//!   one, cut into [`AudioBlock`]s stamped in the audio timeline.
//! - [`KwsStage`]: a [`sepstream_kws::Spotter`] (front end + streaming network + keyword
//!   decisions) on the inference thread, one hop at a time; [`KwsModel`] is sepstream-kws's.
//! - [`listen`]: the whole `sepstream listen` chain (capture -> inference -> actuation), in one
//!   process or split across processes.
//! - [`deadline`]: the deadline harness (per-hop and per-item latency percentiles against a
//!   deadline, misses, allocations) of `sepstream bench` and the benches.
//! - [`voice_robot`]: keyword events as the simulated robot's commands (a live feed or a
//!   recording's events) and the robot run they drive.
//! - [`wire`]: the messages of edges that cross processes; `remote` (feature `zenoh`): those
//!   edges over zenoh.

pub mod capture;
pub mod config;
pub mod deadline;
pub mod error;
pub mod event;
pub mod kws;
pub mod listen;
pub mod metrics;
#[cfg(feature = "zenoh")]
pub mod remote;
pub mod stage;
pub mod voice_robot;
pub mod wire;

pub use capture::{
    AudioBlock, AudioInput, CaptureSource, CaptureStatus, SimOpener, SimStep, SimulatedInput,
};
pub use config::{
    CaptureConfig, EdgeConfig, OverloadPolicy, PipelineConfig, ProcessConfig, StageConfig,
    ZenohConfig,
};
pub use error::{PipelineError, StageError};
pub use event::Detection;
pub use kws::{KwsHit, KwsModel, KwsStage, Meter};
pub use listen::{start_actuation, start_listen, stop_on_ctrl_c, ActuationStage, Heard, Listener};
pub use metrics::{NetCounters, NetSnapshot, StageMetrics, StageSnapshot};
pub use stage::{
    EdgeRx, EdgeTx, Flow, Outbox, Pipeline, PipelineReport, Running, Source, Stage, StageContext,
    StageHooks, StopHandle,
};
