//! The Spotter: samples -> feature frames -> `Network::step` -> keyword decisions, one hop at a time, allocating nothing per hop.

use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;

use sepstream_audio::{
    AudioError, AudioReader, DecisionConfig, FeatureStream, FrontendConfig, KeywordDetector,
    KeywordHit,
};
use sepstream_nn::{Network, NetworkState};

use crate::confirm::{Confirm, Confirmer, CONFIRM_BLOCK};
use crate::error::KwsError;
use crate::model::{check_features, posterior_period, KwsModel};

/// One feature frame through the [`Spotter`]: what the front end made, what the network said
/// (when its strides gave an output) and the keyword decision it led to.
#[derive(Clone, Copy, Debug)]
pub struct Hop<'a> {
    /// End of the frame's window, seconds: the spotter's origin ([`Spotter::reset_at`]) plus
    /// the time since the first sample pushed after the last reset.
    pub time: f64,
    /// The feature frame.
    pub features: &'a [f32],
    /// The network's posteriors for this frame, if it gave an output.
    pub posteriors: Option<&'a [f32]>,
    /// The keyword decided at this frame, if any.
    pub hit: Option<KeywordHit>,
    /// A keyword the decision found at this frame but the second-stage check
    /// (`[decision.confirm]`) turned down.
    pub rejected: Option<KeywordHit>,
}

/// A keyword event with its keyword's name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The label, e.g. `"yes"`.
    pub keyword: String,
    /// Index of the keyword in the model's labels.
    pub label_index: usize,
    /// Estimated start of the word, seconds.
    pub start: f64,
    /// Time the smoothed posterior reached the threshold, seconds.
    pub end: f64,
    /// The smoothed posterior at `end`.
    pub score: f32,
}

impl Event {
    /// Names `hit` from `labels` (allocates the keyword string; `#N` for an index out of range).
    pub fn from_hit(hit: &KeywordHit, labels: &[String]) -> Self {
        Event {
            keyword: labels
                .get(hit.label_index)
                .cloned()
                .unwrap_or_else(|| format!("#{}", hit.label_index)),
            label_index: hit.label_index,
            start: hit.start,
            end: hit.end,
            score: hit.score,
        }
    }
}

/// What the spotter saw and said over a run, kept for plots (allocates per hop: opt in).
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Every feature frame the model got: (time in s, features).
    pub frames: Vec<(f64, Vec<f32>)>,
    /// Every model output: (time in s, posteriors per label).
    pub posteriors: Vec<(f64, Vec<f32>)>,
    /// Every event.
    pub events: Vec<Event>,
}

impl Trace {
    /// Keeps `hop`'s frame, posteriors and event (named from `labels`).
    pub fn record(&mut self, hop: &Hop<'_>, labels: &[String]) {
        self.frames.push((hop.time, hop.features.to_vec()));
        if let Some(p) = hop.posteriors {
            self.posteriors.push((hop.time, p.to_vec()));
        }
        if let Some(h) = &hop.hit {
            self.events.push(Event::from_hit(h, labels));
        }
    }
}

/// Keyword spotting over a stream of samples at one input rate: the front end
/// ([`FeatureStream`], which resamples to the model's rate), the streaming network
/// ([`Network::step`]) and the keyword decisions ([`KeywordDetector::push_hit`]).
///
/// Blocks of any size may be pushed; the frames, posteriors and hits do not depend on how the
/// samples were cut at the model's rate. Every buffer is made in the constructor: [`push`],
/// [`push_hops`], [`finish`] and [`reset`] allocate nothing.
///
/// `N` is how the spotter holds its network: an `Arc<Network>` (a [`KwsModel`]'s, the default)
/// or a `&Network` borrowed for one run.
///
/// [`push`]: Spotter::push
/// [`push_hops`]: Spotter::push_hops
/// [`finish`]: Spotter::finish
/// [`reset`]: Spotter::reset
pub struct Spotter<N = Arc<Network>> {
    net: N,
    state: NetworkState,
    features: FeatureStream,
    detector: KeywordDetector,
    confirmer: Option<Confirmer>,
    origin: f64,
}

impl Spotter<Arc<Network>> {
    /// A spotter for `model` fed at `input_rate` Hz (with its second-stage check, if it has
    /// one).
    pub fn new(model: &KwsModel, input_rate: u32) -> Result<Self, KwsError> {
        let spotter = Spotter::with_network(
            Arc::clone(&model.net),
            &model.frontend,
            &model.decision,
            input_rate,
        )?;
        match &model.confirm {
            Some(c) => spotter.with_confirm(Arc::clone(c)),
            None => Ok(spotter),
        }
    }
}

impl<N: Deref<Target = Network>> Spotter<N> {
    /// A spotter for `net` with these settings (normally the spec's, [`crate::ModelSettings`];
    /// a caller may change the decision settings), fed at `input_rate` Hz. The decision
    /// settings should be validated ([`DecisionConfig::validate`]); out-of-range values are
    /// clamped by the detector.
    pub fn with_network(
        net: N,
        frontend: &FrontendConfig,
        decision: &DecisionConfig,
        input_rate: u32,
    ) -> Result<Self, KwsError> {
        check_features(&net, frontend)?;
        let features =
            FeatureStream::new(frontend, input_rate).map_err(|source| KwsError::FrontEnd {
                rate: input_rate,
                source,
            })?;
        let detector = KeywordDetector::new(
            decision,
            &net.spec().labels,
            posterior_period(&net, frontend),
        );
        Ok(Spotter {
            state: net.new_state(),
            net,
            features,
            detector,
            confirmer: None,
            origin: 0.0,
        })
    }

    /// This spotter with a second-stage check: every keyword the decision finds goes out only
    /// if `confirm`'s model agrees on the audio already heard ([`Hop::rejected`] otherwise).
    /// Its buffers are made here; pushing still allocates nothing.
    pub fn with_confirm(mut self, confirm: Arc<Confirm>) -> Result<Self, KwsError> {
        if confirm.network().spec().labels != self.net.spec().labels {
            return Err(KwsError::Confirm {
                model: self.net.spec().name.clone(),
                reason: format!("model {}: the labels differ", confirm.name()),
            });
        }
        self.confirmer = Some(Confirmer::new(confirm, self.input_rate())?);
        Ok(self)
    }

    /// The second-stage check, if there is one.
    pub fn confirm(&self) -> Option<&Arc<Confirm>> {
        self.confirmer.as_ref().map(Confirmer::confirm)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The model's labels (what a hit's `label_index` indexes).
    pub fn labels(&self) -> &[String] {
        self.detector.labels()
    }

    /// The rate the spotter expects samples at, in Hz.
    pub fn input_rate(&self) -> u32 {
        self.features.input_rate()
    }

    /// The front end's settings (its hop, [`FrontendConfig::hop`], is one feature frame).
    pub fn frontend(&self) -> &FrontendConfig {
        self.features.config()
    }

    /// Seconds between posterior frames.
    pub fn posterior_period(&self) -> f64 {
        posterior_period(&self.net, self.features.config())
    }

    /// Names a hit ([`Event::from_hit`] with this model's labels; allocates).
    pub fn event(&self, hit: &KeywordHit) -> Event {
        Event::from_hit(hit, self.labels())
    }

    /// Pushes samples; calls `on_hit` per keyword decided. Allocates nothing.
    pub fn push(&mut self, samples: &[f32], mut on_hit: impl FnMut(KeywordHit)) {
        self.push_hops(samples, |hop| {
            if let Some(h) = hop.hit {
                on_hit(h);
            }
        });
    }

    /// Pushes samples; calls `on_hop` per feature frame they complete, in order. Allocates
    /// nothing.
    pub fn push_hops(&mut self, samples: &[f32], mut on_hop: impl FnMut(&Hop<'_>)) {
        let Spotter {
            net,
            state,
            features,
            detector,
            confirmer,
            origin,
        } = self;
        match confirmer {
            None => features.push(
                samples,
                hop_handler(net, state, detector, None, *origin, on_hop),
            ),
            // The check's front end is fed each block before the spotter's, so it holds the
            // audio up to any hit the block gives.
            Some(c) => {
                for block in samples.chunks(CONFIRM_BLOCK) {
                    c.push(block);
                    features.push(
                        block,
                        hop_handler(net, state, detector, Some(&mut *c), *origin, &mut on_hop),
                    );
                }
            }
        }
    }

    /// End of input: runs the front end's delayed tail (a resampler's) through, calling
    /// `on_hit` per keyword decided. Call [`Spotter::reset`] before pushing again.
    pub fn finish(&mut self, mut on_hit: impl FnMut(KeywordHit)) {
        self.finish_hops(|hop| {
            if let Some(h) = hop.hit {
                on_hit(h);
            }
        });
    }

    /// [`Spotter::finish`], calling `on_hop` per feature frame.
    pub fn finish_hops(&mut self, on_hop: impl FnMut(&Hop<'_>)) {
        let Spotter {
            net,
            state,
            features,
            detector,
            confirmer,
            origin,
        } = self;
        if let Some(c) = confirmer.as_mut() {
            c.finish();
        }
        features.finish(hop_handler(
            net,
            state,
            detector,
            confirmer.as_mut(),
            *origin,
            on_hop,
        ));
    }

    /// Forgets every past sample, network state and decision: the next sample pushed is at
    /// time 0.
    pub fn reset(&mut self) {
        self.reset_at(0.0);
    }

    /// [`Spotter::reset`], with the next sample pushed at `origin` seconds (e.g. where a
    /// stream resumes after a gap), so hop and hit times stay in the caller's timeline.
    pub fn reset_at(&mut self, origin: f64) {
        self.features.reset();
        self.state.reset();
        self.detector.reset();
        if let Some(c) = &mut self.confirmer {
            c.reset();
        }
        self.origin = origin;
    }

    /// Runs an audio source (at this spotter's input rate) block by block to its end, then
    /// [`Spotter::finish`]; `on_hop` gets every feature frame. Memory does not grow with the
    /// length of the source (an hour of audio or an endless pipe).
    ///
    /// When the source turns out to be damaged or cut part of the way in, every hop before the
    /// damage has been passed to `on_hop` by the time [`KwsError::Read`] is returned.
    pub fn push_reader(
        &mut self,
        reader: &mut AudioReader,
        mut on_hop: impl FnMut(&Hop<'_>),
    ) -> Result<(), KwsError> {
        let rate = reader.info().sample_rate;
        if rate != self.input_rate() {
            return Err(KwsError::InputRate {
                expected: self.input_rate(),
                actual: rate,
            });
        }
        let mut block = Vec::with_capacity(sepstream_audio::DEFAULT_BLOCK);
        loop {
            match reader.read_block(&mut block) {
                Ok(0) => break,
                Ok(_) => self.push_hops(&block, &mut on_hop),
                Err(e) => {
                    self.finish_hops(&mut on_hop);
                    return Err(KwsError::Read(e));
                }
            }
        }
        self.finish_hops(&mut on_hop);
        if reader.frames_read() == 0 {
            return Err(KwsError::Read(AudioError::Empty {
                path: reader.path().to_path_buf(),
            }));
        }
        Ok(())
    }
}

/// The front end's frame callback: network step, decision, second-stage check, `on_hop`.
fn hop_handler<'a>(
    net: &'a Network,
    state: &'a mut NetworkState,
    detector: &'a mut KeywordDetector,
    mut confirmer: Option<&'a mut Confirmer>,
    origin: f64,
    mut on_hop: impl FnMut(&Hop<'_>) + 'a,
) -> impl FnMut(f64, &[f32]) + 'a {
    move |t, frame| {
        let time = origin + t;
        let posteriors = net.step(state, frame);
        let mut hit = posteriors.and_then(|p| detector.push_hit(time, p));
        let mut rejected = None;
        if let (Some(h), Some(c)) = (hit, confirmer.as_deref_mut()) {
            if !c.agrees(&h, t) {
                rejected = hit.take();
            }
        }
        on_hop(&Hop {
            time,
            features: frame,
            posteriors,
            hit,
            rejected,
        });
    }
}
