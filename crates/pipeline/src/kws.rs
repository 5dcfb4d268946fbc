//! The inference stage of keyword spotting: audio blocks at the device rate through the front end
//! (`FeatureStream`, which resamples), the streaming network (`Network::step`) and the keyword
//! decisions (`KeywordDetector::push_hit`), one hop at a time, allocating nothing per hop.
//! Events leave as `Copy` [`KwsHit`]s; the actuation side gives them their names.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sepstream_audio::{DecisionConfig, FeatureStream, FrontendConfig, KeywordDetector};
use sepstream_nn::{ModelSpec, Network, NetworkState};

use crate::capture::AudioBlock;
use crate::error::{PipelineError, StageError};
use crate::event::{unix_now, Detection};
use crate::stage::{Outbox, Stage};

fn model_error(origin: impl std::fmt::Display, e: sepstream_nn::NnError) -> PipelineError {
    PipelineError::Model {
        origin: origin.to_string(),
        source: Arc::new(e),
    }
}

fn settings(model: &str, e: sepstream_audio::AudioError) -> PipelineError {
    PipelineError::ModelSettings {
        model: model.to_string(),
        source: Arc::new(e),
    }
}

/// A keyword model ready to run: network, front end, decision settings, labels.
#[derive(Clone)]
pub struct KwsModel {
    /// The network (shared, immutable).
    pub net: Arc<Network>,
    /// Front end settings (the spec's `[frontend]`, defaults when absent).
    pub frontend: FrontendConfig,
    /// Decision settings (the spec's `[decision]`, defaults when absent).
    pub decision: DecisionConfig,
    /// Output labels.
    pub labels: Vec<String>,
    /// Whether the weights are random (no trained weights were found).
    pub random: bool,
}

impl KwsModel {
    /// Builds the model around a network.
    pub fn from_network(net: Network, random: bool) -> Result<Self, PipelineError> {
        let spec = net.spec().clone();
        let frontend = match &spec.frontend {
            Some(t) => FrontendConfig::from_table(t).map_err(|e| settings(&spec.name, e))?,
            None => FrontendConfig::default(),
        };
        let decision = match &spec.decision {
            Some(t) => DecisionConfig::from_table(t).map_err(|e| settings(&spec.name, e))?,
            None => DecisionConfig::default(),
        };
        let out = net.output_shape();
        if out.width * out.channels != spec.labels.len() {
            return Err(PipelineError::Setup(format!(
                "model {:?}: output has {} values but {} labels",
                spec.name,
                out.width * out.channels,
                spec.labels.len()
            )));
        }
        let feat = frontend.feature_len();
        let inp = net.input_shape();
        if inp.width * inp.channels != feat {
            return Err(PipelineError::Setup(format!(
                "model {:?}: input frame has {} values but the front end makes {feat}",
                spec.name,
                inp.width * inp.channels
            )));
        }
        Ok(KwsModel {
            net: Arc::new(net),
            frontend,
            decision,
            labels: spec.labels.clone(),
            random,
        })
    }

    /// Loads a spec and its trained weights. With `random_if_missing`, a spec whose weights file
    /// is absent gets deterministic random weights instead (plumbing runs; detections meaningless).
    pub fn load(spec_path: &Path, random_if_missing: bool) -> Result<Self, PipelineError> {
        let spec = ModelSpec::load(spec_path).map_err(|e| model_error(spec_path.display(), e))?;
        let weights_present = spec.weights.as_ref().is_some_and(|w| {
            let p = spec_path.parent().unwrap_or(Path::new(".")).join(w);
            p.is_file()
        });
        if !weights_present && random_if_missing {
            let net = Network::random(spec, 1).map_err(|e| model_error(spec_path.display(), e))?;
            return Self::from_network(net, true);
        }
        let net = Network::load(spec_path).map_err(|e| model_error(spec_path.display(), e))?;
        Self::from_network(net, false)
    }

    /// The keyword model compiled into the library (`sepstream_nn::bundled`, the one `sepstream
    /// listen` uses by default): one call, no files needed.
    pub fn bundled_default() -> Result<Self, PipelineError> {
        let name = sepstream_nn::bundled::DEFAULT_KEYWORD_MODEL;
        let model = sepstream_nn::bundled::find(name)
            .ok_or_else(|| PipelineError::Setup(format!("no bundled model {name:?}")))?;
        let net = model
            .network()
            .map_err(|e| model_error(format!("bundled:{name}"), e))?;
        Self::from_network(net, false)
    }

    /// Seconds between posterior frames (front end hop times the network's time stride).
    pub fn posterior_period(&self) -> f64 {
        self.net.time_stride().max(1) as f64 / self.frontend.frame_rate()
    }
}

/// A keyword decision as it leaves the inference stage (no allocation): label index and times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KwsHit {
    /// Index into the model's labels.
    pub label: usize,
    /// Audio time of the word's start, seconds since capture began.
    pub start: f64,
    /// Audio time of the decision window's end.
    pub end: f64,
    /// Smoothed posterior.
    pub score: f32,
    /// Wall-clock time of the decision, Unix seconds.
    pub decided_at: f64,
    /// Time from the capture stage taking the block to the decision, ms.
    pub latency_ms: f64,
}

impl KwsHit {
    /// The named event (allocates the keyword string).
    pub fn to_detection(&self, labels: &[String]) -> Detection {
        Detection {
            keyword: labels
                .get(self.label)
                .cloned()
                .unwrap_or_else(|| format!("#{}", self.label)),
            label: self.label,
            start: self.start,
            end: self.end,
            score: self.score,
            decided_at: self.decided_at,
            latency_ms: self.latency_ms,
        }
    }
}

/// Live values for a terminal meter: input level and the top posteriors, updated per hop.
#[derive(Debug, Default)]
pub struct Meter {
    /// Peak level of the last block (f32 bits).
    pub level: AtomicU32,
    /// Label indices of the 3 highest posteriors.
    pub top_label: [AtomicU32; 3],
    /// Their posteriors (f32 bits).
    pub top_p: [AtomicU32; 3],
    /// Posterior frames so far.
    pub frames: AtomicU64,
    /// Discontinuities (dropped audio) that reset the stream.
    pub resets: AtomicU64,
}

impl Meter {
    /// (peak level, [(label index, posterior); 3]).
    pub fn read(&self) -> (f32, [(usize, f32); 3]) {
        let mut top = [(0usize, 0.0f32); 3];
        for (k, t) in top.iter_mut().enumerate() {
            *t = (
                self.top_label[k].load(Ordering::Relaxed) as usize,
                f32::from_bits(self.top_p[k].load(Ordering::Relaxed)),
            );
        }
        (f32::from_bits(self.level.load(Ordering::Relaxed)), top)
    }

    fn update(&self, posteriors: &[f32]) {
        let mut top = [(0usize, f32::NEG_INFINITY); 3];
        for (i, &p) in posteriors.iter().enumerate() {
            if p > top[2].1 {
                top[2] = (i, p);
                if top[2].1 > top[1].1 {
                    top.swap(1, 2);
                }
                if top[1].1 > top[0].1 {
                    top.swap(0, 1);
                }
            }
        }
        for (k, (i, p)) in top.iter().enumerate() {
            self.top_label[k].store(*i as u32, Ordering::Relaxed);
            self.top_p[k].store(p.max(0.0).to_bits(), Ordering::Relaxed);
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// The inference stage: [`AudioBlock`] in, [`KwsHit`] out.
pub struct KwsStage {
    model: KwsModel,
    state: NetworkState,
    stream: Option<FeatureStream>,
    detector: KeywordDetector,
    expected: Option<u64>,
    offset_s: f64,
    meter: Arc<Meter>,
}

impl KwsStage {
    /// A stage running `model`; the feature stream is made for the device rate of the first block.
    pub fn new(model: KwsModel, meter: Arc<Meter>) -> Self {
        let detector =
            KeywordDetector::new(&model.decision, &model.labels, model.posterior_period());
        KwsStage {
            state: model.net.new_state(),
            model,
            stream: None,
            detector,
            expected: None,
            offset_s: 0.0,
            meter,
        }
    }

    /// Prepares for blocks at `rate` (allocates; done on the first block or a rate change).
    pub fn prepare(&mut self, rate: u32) -> Result<(), StageError> {
        if self.stream.as_ref().map(|s| s.input_rate()) != Some(rate) {
            let fs = FeatureStream::new(&self.model.frontend, rate)
                .map_err(|e| StageError::new(format!("front end at {rate} Hz: {e}")))?;
            self.stream = Some(fs);
            self.expected = None;
        }
        Ok(())
    }

    /// Runs one block; calls `emit` per keyword decision. After [`KwsStage::prepare`] for the
    /// block's rate, allocates nothing (the steady-state hop). A gap in the timeline (audio
    /// dropped upstream) resets the stream, network state and detector so stale context is gone.
    pub fn process_block(
        &mut self,
        block: &AudioBlock,
        mut emit: impl FnMut(KwsHit),
    ) -> Result<(), StageError> {
        self.prepare(block.rate)?;
        let rate = block.rate as f64;
        if self.expected != Some(block.start_sample) {
            if self.expected.is_some() {
                self.meter.resets.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(s) = self.stream.as_mut() {
                s.reset();
            }
            self.state.reset();
            self.detector.reset();
            self.offset_s = block.start_sample as f64 / rate;
        }
        self.expected = Some(block.start_sample + block.len as u64);
        let samples = block.samples();
        let peak = samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        self.meter.level.store(peak.to_bits(), Ordering::Relaxed);
        let KwsStage {
            model,
            state,
            stream,
            detector,
            offset_s,
            meter,
            ..
        } = self;
        let Some(stream) = stream.as_mut() else {
            return Ok(());
        };
        let net = &model.net;
        let offset = *offset_s;
        let captured_at: Instant = block.captured_at;
        stream.push(samples, |t, frame| {
            if let Some(post) = net.step(state, frame) {
                meter.update(post);
                if let Some(h) = detector.push_hit(offset + t, post) {
                    emit(KwsHit {
                        label: h.label_index,
                        start: h.start,
                        end: h.end,
                        score: h.score,
                        decided_at: unix_now(),
                        latency_ms: captured_at.elapsed().as_secs_f64() * 1e3,
                    });
                }
            }
        });
        Ok(())
    }

    /// The model's labels.
    pub fn labels(&self) -> &[String] {
        &self.model.labels
    }
}

impl Stage for KwsStage {
    type In = AudioBlock;
    type Out = KwsHit;

    fn process(&mut self, block: AudioBlock, out: &mut Outbox<KwsHit>) -> Result<(), StageError> {
        let mut send_err = None;
        self.process_block(&block, |hit| {
            if let Err(e) = out.send(hit) {
                send_err = Some(e);
            }
        })?;
        match send_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
