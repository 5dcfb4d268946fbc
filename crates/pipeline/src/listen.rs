//! The live keyword chain behind `sepstream listen` and `examples/live_kws.rs`:
//! capture (cpal or simulated) -> `audio` edge -> inference ([`KwsStage`]) -> `events` edge ->
//! actuation (a closure that gets each named [`Detection`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::capture::{AudioInput, CaptureSource, CaptureStatus};
use crate::config::PipelineConfig;
use crate::error::{PipelineError, StageError};
use crate::event::Detection;
use crate::kws::{KwsHit, KwsModel, KwsStage, Meter};
use crate::stage::{Outbox, Pipeline, Running, Stage, StopHandle};

/// Stage names of the listen chain.
pub const CAPTURE: &str = "capture";
/// The inference stage.
pub const INFERENCE: &str = "inference";
/// The actuation stage.
pub const ACTUATION: &str = "actuation";
/// Edge from capture to inference.
pub const AUDIO_EDGE: &str = "audio";
/// Edge from inference to actuation.
pub const EVENTS_EDGE: &str = "events";

/// The actuation stage: names each hit and hands it to a closure (print it, drive a robot...).
pub struct ActuationStage<F> {
    labels: Vec<String>,
    act: F,
}

impl<F> ActuationStage<F>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    /// Calls `act` per detection of a model with these labels.
    pub fn new(labels: Vec<String>, act: F) -> Self {
        ActuationStage { labels, act }
    }
}

impl<F> Stage for ActuationStage<F>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    type In = KwsHit;
    type Out = ();
    fn process(&mut self, hit: KwsHit, _out: &mut Outbox<()>) -> Result<(), StageError> {
        let d = hit.to_detection(&self.labels);
        (self.act)(&d)
    }
}

/// A running listen chain.
pub struct Listener {
    /// The pipeline (snapshots, stop, shutdown).
    pub running: Running,
    /// Device, rate and callback counters once capture is open.
    pub capture: Arc<CaptureStatus>,
    /// Level and top posteriors for a live meter.
    pub meter: Arc<Meter>,
}

/// Wires and starts capture -> inference -> actuation.
pub fn start_listen<F>(
    model: KwsModel,
    input: AudioInput,
    config: PipelineConfig,
    act: F,
) -> Result<Listener, PipelineError>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    let capture_cfg = config.capture;
    let mut p = Pipeline::new(config);
    let (atx, arx) = p.edge(AUDIO_EDGE);
    let (etx, erx) = p.edge(EVENTS_EDGE);
    let source = CaptureSource::new(input, capture_cfg);
    let status = source.status();
    let meter = Arc::new(Meter::default());
    let labels = model.labels.clone();
    p.add_source(CAPTURE, source, atx)?;
    p.add_stage(
        INFERENCE,
        KwsStage::new(model, meter.clone()),
        arx,
        Some(etx),
    )?;
    p.add_stage(ACTUATION, ActuationStage::new(labels, act), erx, None)?;
    let running = p.start()?;
    Ok(Listener {
        running,
        capture: status,
        meter,
    })
}

/// Installs a Ctrl-C (SIGINT) handler that requests a clean stop; a second Ctrl-C exits
/// at once with status 130. Call once per process.
pub fn stop_on_ctrl_c(stop: StopHandle) -> Result<(), PipelineError> {
    let seen = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        stop.request_stop();
    })
    .map_err(|e| PipelineError::Setup(format!("cannot install the Ctrl-C handler: {e}")))
}
