//! The live keyword chain behind `sepstream listen` and `examples/live_kws.rs`:
//! capture (cpal or simulated) -> `audio` edge -> inference ([`KwsStage`]) -> `events` edge ->
//! actuation (a closure that gets each named [`Detection`]); in one process, or split across
//! processes where the config gives an edge a zenoh key (the same graph either way).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::{AudioBlock, AudioInput, CaptureSource, CaptureStatus};
use crate::config::PipelineConfig;
use crate::error::{PipelineError, StageError};
use crate::event::Detection;
use crate::kws::{KwsHit, KwsModel, KwsStage, Meter};
use crate::stage::{Outbox, Pipeline, PipelineReport, Running, Stage, StopHandle};

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
/// The stage that sends the audio edge over zenoh.
pub const AUDIO_PUB: &str = "audio.pub";
/// The stage that receives the audio edge from zenoh.
pub const AUDIO_SUB: &str = "audio.sub";
/// The stage that sends keyword events over zenoh.
pub const EVENTS_PUB: &str = "events.pub";
/// The stage that receives keyword events from zenoh.
pub const EVENTS_SUB: &str = "events.sub";

/// A keyword event as the actuation stage gets it: a [`KwsHit`] from inference in this process,
/// or a [`Detection`] already named by another process.
pub trait Heard: Send + 'static {
    /// The named detection (labels name a hit's index).
    fn detection(&self, labels: &[String]) -> Detection;
}

impl Heard for KwsHit {
    fn detection(&self, labels: &[String]) -> Detection {
        self.to_detection(labels)
    }
}

impl Heard for Detection {
    fn detection(&self, _labels: &[String]) -> Detection {
        self.clone()
    }
}

/// The actuation stage: names each hit and hands it to a closure (print it, drive a robot...).
pub struct ActuationStage<F, I = KwsHit> {
    labels: Vec<String>,
    act: F,
    _input: std::marker::PhantomData<fn(I)>,
}

impl<F, I> ActuationStage<F, I>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    /// Calls `act` per detection of a model with these labels.
    pub fn new(labels: Vec<String>, act: F) -> Self {
        ActuationStage {
            labels,
            act,
            _input: std::marker::PhantomData,
        }
    }
}

impl<F, I> Stage for ActuationStage<F, I>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
    I: Heard,
{
    type In = I;
    type Out = ();
    fn process(&mut self, heard: I, _out: &mut Outbox<()>) -> Result<(), StageError> {
        let d = heard.detection(&self.labels);
        (self.act)(&d)
    }
}

/// A running listen chain (or the part of it this process runs).
pub struct Listener {
    /// The pipeline (snapshots, stop, shutdown).
    pub running: Running,
    /// Device, rate and callback counters once capture is open (never started when capture
    /// runs in another process).
    pub capture: Arc<CaptureStatus>,
    /// Level and top posteriors for a live meter.
    pub meter: Arc<Meter>,
    /// The stages this process runs, in graph order.
    pub stages: Vec<&'static str>,
    /// The zenoh key expressions this process sends to (`(edge, key)`).
    pub publishes: Vec<(&'static str, String)>,
    /// The zenoh key expressions this process receives from (`(edge, key)`).
    pub subscribes: Vec<(&'static str, String)>,
    #[cfg(feature = "zenoh")]
    session: Option<crate::remote::NetSession>,
}

impl Listener {
    /// Stops the pipeline (waiting up to `grace`), then leaves the zenoh network (waiting at most
    /// 200 ms more); returns the final counters and the first error.
    pub fn shutdown(self, grace: Duration) -> (PipelineReport, Result<(), PipelineError>) {
        let out = self.running.shutdown(grace);
        #[cfg(feature = "zenoh")]
        if let Some(s) = self.session {
            crate::remote::close_session(s, Duration::from_millis(200));
        }
        out
    }
}

/// Wires and starts capture -> inference -> actuation, or the stages of it that `config`'s
/// `[process] stages` names, with zenoh edges where `edges.NAME.zenoh_key` is set.
pub fn start_listen<F>(
    model: KwsModel,
    input: AudioInput,
    config: PipelineConfig,
    act: F,
) -> Result<Listener, PipelineError>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    start_graph(Some(model), Some(input), config, act)
}

/// Runs only the actuation stage, on keyword events from another process (`edges.events`
/// must have a `zenoh_key`).
pub fn start_actuation<F>(mut config: PipelineConfig, act: F) -> Result<Listener, PipelineError>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    config.process.stages = vec![ACTUATION.to_string()];
    start_graph(None, None, config, act)
}

fn cross_process(edge: &str, from: &str, to: &str, here: &str) -> PipelineError {
    let there = if here == from { to } else { from };
    PipelineError::Wiring {
        edge: edge.into(),
        reason: format!(
            "joins {from} and {to}, but only {here} runs in this process ([process] stages): \
             give edges.{edge} a zenoh_key so {there} can run elsewhere"
        ),
    }
}

#[cfg(feature = "zenoh")]
fn session(
    slot: &mut Option<crate::remote::NetSession>,
    cfg: &PipelineConfig,
) -> Result<crate::remote::NetSession, PipelineError> {
    if slot.is_none() {
        *slot = Some(crate::remote::open_session(&cfg.zenoh)?);
    }
    Ok(slot.clone().expect("opened above"))
}

fn start_graph<F>(
    model: Option<KwsModel>,
    input: Option<AudioInput>,
    config: PipelineConfig,
    act: F,
) -> Result<Listener, PipelineError>
where
    F: FnMut(&Detection) -> Result<(), StageError> + Send + 'static,
{
    const ALL: [&str; 3] = [CAPTURE, INFERENCE, ACTUATION];
    if let Some(bad) = config
        .process
        .stages
        .iter()
        .find(|s| !ALL.contains(&s.as_str()))
    {
        return Err(PipelineError::Config {
            origin: "[process] stages".into(),
            reason: format!("unknown stage {bad:?} (the listen graph has {ALL:?})"),
        });
    }
    let (run_c, run_i, run_a) = (
        config.runs(CAPTURE),
        config.runs(INFERENCE),
        config.runs(ACTUATION),
    );
    let audio_cfg = config.edge(AUDIO_EDGE);
    let events_cfg = config.edge(EVENTS_EDGE);
    let (audio_key, events_key) = (audio_cfg.zenoh_key.clone(), events_cfg.zenoh_key.clone());
    if audio_key.is_none() && run_c != run_i {
        let here = if run_c { CAPTURE } else { INFERENCE };
        return Err(cross_process(AUDIO_EDGE, CAPTURE, INFERENCE, here));
    }
    if events_key.is_none() && run_i != run_a {
        let here = if run_i { INFERENCE } else { ACTUATION };
        return Err(cross_process(EVENTS_EDGE, INFERENCE, ACTUATION, here));
    }
    #[cfg(not(feature = "zenoh"))]
    if config.uses_zenoh() {
        return Err(PipelineError::Setup(
            "the config has zenoh edges (zenoh_key), but this build has no zenoh support: \
             build with the cargo feature `zenoh` (cargo build --release -p sepstream-cli --features zenoh)"
                .into(),
        ));
    }
    #[cfg(feature = "zenoh")]
    let mut net: Option<crate::remote::NetSession> = None;
    // only zenoh edges add to these
    #[cfg_attr(not(feature = "zenoh"), allow(unused_mut))]
    let mut publishes = Vec::new();
    #[cfg_attr(not(feature = "zenoh"), allow(unused_mut))]
    let mut subscribes = Vec::new();
    let mut stages = Vec::new();

    let capture_cfg = config.capture;
    let mut p = Pipeline::new(config.clone());
    let meter = Arc::new(Meter::default());
    let mut status = Arc::new(CaptureStatus::default());
    let labels = model.as_ref().map(|m| m.labels.clone()).unwrap_or_default();

    // capture -> audio
    let mut audio_rx = None;
    if run_c {
        let input =
            input.ok_or_else(|| PipelineError::Setup("capture needs an audio input".into()))?;
        let (atx, arx) = p.edge::<AudioBlock>(AUDIO_EDGE);
        let source = CaptureSource::new(input, capture_cfg);
        status = source.status();
        p.add_source(CAPTURE, source, atx)?;
        stages.push(CAPTURE);
        match &audio_key {
            None => audio_rx = Some(arx),
            #[cfg(feature = "zenoh")]
            Some(key) => {
                let s = crate::remote::PublishStage::new(
                    session(&mut net, &config)?,
                    key,
                    crate::remote::AudioCodec,
                );
                p.add_stage(AUDIO_PUB, s, arx, None)?;
                stages.push(AUDIO_PUB);
                publishes.push((AUDIO_EDGE, key.clone()));
            }
            #[cfg(not(feature = "zenoh"))]
            Some(_) => unreachable!("refused above"),
        }
    }
    // audio -> inference -> events
    let mut events_rx = None;
    if run_i {
        let model = model
            .clone()
            .ok_or_else(|| PipelineError::Setup("inference needs a keyword model".into()))?;
        let arx = match audio_rx.take() {
            Some(rx) => rx,
            None => {
                #[cfg(feature = "zenoh")]
                {
                    let (stx, srx) = p.edge::<AudioBlock>(AUDIO_EDGE);
                    let src = crate::remote::SubscribeSource::new(
                        session(&mut net, &config)?,
                        AUDIO_EDGE,
                        &audio_cfg,
                        crate::remote::AudioCodec,
                    )?;
                    p.add_source(AUDIO_SUB, src, stx)?;
                    stages.push(AUDIO_SUB);
                    subscribes.push((AUDIO_EDGE, audio_key.clone().unwrap_or_default()));
                    srx
                }
                #[cfg(not(feature = "zenoh"))]
                unreachable!("refused above")
            }
        };
        let (etx, erx) = p.edge::<KwsHit>(EVENTS_EDGE);
        let name = model.net.spec().name.clone();
        p.add_stage(
            INFERENCE,
            KwsStage::new(model, meter.clone()),
            arx,
            Some(etx),
        )?;
        stages.push(INFERENCE);
        match &events_key {
            None => events_rx = Some(erx),
            #[cfg(feature = "zenoh")]
            Some(key) => {
                let enc = crate::remote::EventEncoder {
                    model: name,
                    labels: labels.clone(),
                };
                let s = crate::remote::PublishStage::new(session(&mut net, &config)?, key, enc);
                p.add_stage(EVENTS_PUB, s, erx, None)?;
                stages.push(EVENTS_PUB);
                publishes.push((EVENTS_EDGE, key.clone()));
            }
            #[cfg(not(feature = "zenoh"))]
            Some(_) => {
                let _ = name;
                unreachable!("refused above")
            }
        }
    }
    // events -> actuation
    if run_a {
        match events_rx.take() {
            Some(erx) => {
                p.add_stage(
                    ACTUATION,
                    ActuationStage::<F, KwsHit>::new(labels, act),
                    erx,
                    None,
                )?;
            }
            None => {
                #[cfg(feature = "zenoh")]
                {
                    let (stx, srx) = p.edge::<Detection>(EVENTS_EDGE);
                    let src = crate::remote::SubscribeSource::new(
                        session(&mut net, &config)?,
                        EVENTS_EDGE,
                        &events_cfg,
                        crate::remote::EventDecoder,
                    )?;
                    p.add_source(EVENTS_SUB, src, stx)?;
                    stages.push(EVENTS_SUB);
                    subscribes.push((EVENTS_EDGE, events_key.clone().unwrap_or_default()));
                    p.add_stage(
                        ACTUATION,
                        ActuationStage::<F, Detection>::new(labels, act),
                        srx,
                        None,
                    )?;
                }
                #[cfg(not(feature = "zenoh"))]
                {
                    let _ = act;
                    unreachable!("refused above")
                }
            }
        }
        stages.push(ACTUATION);
    }
    if stages.is_empty() {
        return Err(PipelineError::Config {
            origin: "[process] stages".into(),
            reason: "names no stage to run".into(),
        });
    }
    let running = p.start()?;
    Ok(Listener {
        running,
        capture: status,
        meter,
        stages,
        publishes,
        subscribes,
        #[cfg(feature = "zenoh")]
        session: net,
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
