//! A second-stage check of keyword events: a model made for fixed windows re-reads the audio already heard before each event, which goes out only if that model agrees.

use std::path::Path;
use std::sync::Arc;

use sepstream_audio::{ConfirmConfig, FeatureStream, FrontendConfig, KeywordHit};
use sepstream_nn::bundled::ModelSource;
use sepstream_nn::cost::model_cost;
use sepstream_nn::{Network, WindowScratch};

use crate::error::KwsError;
use crate::model::{check_features, ModelSettings};

/// Input samples the [`crate::Spotter`] gives the checking front end ahead of its own frames at
/// most: it feeds both in blocks of this size, so the check always has the audio up to a hit.
pub(crate) const CONFIRM_BLOCK: usize = 512;

/// The checking model with its settings, shared by every stream ([`Confirmer`] is one
/// stream's state).
#[derive(Clone)]
pub struct Confirm {
    net: Arc<Network>,
    frontend: FrontendConfig,
    config: ConfirmConfig,
    window_frames: usize,
    name: String,
}

impl std::fmt::Debug for Confirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirm")
            .field("model", &self.name)
            .field("config", &self.config)
            .field("window_frames", &self.window_frames)
            .finish()
    }
}

impl Confirm {
    /// Loads the model `config.model` names: a bundled model's name, or a spec file (relative to
    /// `base`, the folder of the spec that names it, when given). `checked` is the network whose
    /// events it checks: the labels must be the same, by name and order.
    pub fn load(
        config: &ConfirmConfig,
        base: Option<&Path>,
        checked: &Network,
    ) -> Result<Self, KwsError> {
        let arg = Path::new(&config.model);
        let file = base.map(|b| b.join(arg)).filter(|p| p.is_file());
        let source = match file {
            Some(p) => ModelSource::File(p),
            None => ModelSource::resolve(arg).map_err(|source| KwsError::Model {
                origin: config.model.clone(),
                source,
            })?,
        };
        let net = source.network().map_err(|source| KwsError::Model {
            origin: config.model.clone(),
            source,
        })?;
        Self::new(net, config, checked)
    }

    /// The check of `checked`'s events by `net` with these settings.
    pub fn new(net: Network, config: &ConfirmConfig, checked: &Network) -> Result<Self, KwsError> {
        let name = net.spec().name.clone();
        let fail = |reason: String| KwsError::Confirm {
            model: checked.spec().name.clone(),
            reason: format!("model {name}: {reason}"),
        };
        config
            .validate()
            .map_err(|e| fail(sepstream_audio::AudioError::to_string(&e)))?;
        let ModelSettings { frontend, decision } = ModelSettings::from_spec(net.spec())?;
        check_features(&net, &frontend)?;
        if net.spec().labels != checked.spec().labels {
            return Err(fail(format!(
                "its labels {:?} differ from {:?}",
                net.spec().labels,
                checked.spec().labels
            )));
        }
        if net.output_shape().len() != net.spec().labels.len() {
            return Err(fail(format!(
                "its output has {} values for {} labels",
                net.output_shape().len(),
                net.spec().labels.len()
            )));
        }
        if decision.window <= 0.0 {
            return Err(fail(
                "it names no fixed window ([decision] window, seconds): only a model made for \
                 whole windows can check one"
                    .into(),
            ));
        }
        // The frames a one-window clip gives (at least one, as a shorter clip is read).
        let samples = (decision.window * f64::from(frontend.sample_rate)).round() as usize;
        let window_frames = frontend.n_frames(samples).max(1);
        Ok(Confirm {
            net: Arc::new(net),
            frontend,
            config: config.clone(),
            window_frames,
            name,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ConfirmConfig {
        &self.config
    }

    /// The checking network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The checking model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Feature frames of one checked window.
    pub fn window_frames(&self) -> usize {
        self.window_frames
    }

    /// FLOPs of one check: the checking network over every window `ends` names (each layer's
    /// FLOPs per output frame times its outputs in one window, from [`model_cost`]).
    pub fn flops_per_check(&self) -> u64 {
        let per_window: u64 = model_cost(&self.net)
            .layers
            .iter()
            .map(|l| l.flops_per_frame * self.window_frames.div_ceil(l.cumulative_stride) as u64)
            .sum();
        per_window * self.config.ends.len() as u64
    }
}

/// The checking front end's recent feature frames with their end times, oldest overwritten
/// first.
struct FrameRing {
    frames: Vec<f32>,
    /// End time (s, from the last reset) of the frame in each slot.
    times: Vec<f64>,
    /// Frames written since the last reset.
    written: usize,
    feature_len: usize,
}

impl FrameRing {
    fn new(slots: usize, feature_len: usize) -> Self {
        FrameRing {
            frames: vec![0.0; slots * feature_len],
            times: vec![f64::NEG_INFINITY; slots],
            written: 0,
            feature_len,
        }
    }

    fn store(&mut self, t: f64, frame: &[f32]) {
        let slot = self.written % self.times.len();
        self.frames[slot * self.feature_len..(slot + 1) * self.feature_len].copy_from_slice(frame);
        self.times[slot] = t;
        self.written += 1;
    }

    fn reset(&mut self) {
        self.times.fill(f64::NEG_INFINITY);
        self.written = 0;
    }

    /// Copies the (at most `max`) frames that end by `until`, oldest first, into `out`; how many
    /// (0 when none ends by then).
    fn copy_until(&self, until: f64, max: usize, out: &mut [f32]) -> usize {
        let slots = self.times.len();
        let stored = self.written.min(slots);
        // The newest stored frame that ends by `until`, walking back from the newest.
        let Some(back) = (0..stored).find(|b| self.times[(self.written - 1 - b) % slots] <= until)
        else {
            return 0;
        };
        let n = max.min(stored - back);
        let last = self.written - 1 - back;
        let len = self.feature_len;
        for k in 0..n {
            let slot = (last + 1 - n + k) % slots;
            out[k * len..(k + 1) * len].copy_from_slice(&self.frames[slot * len..(slot + 1) * len]);
        }
        n
    }
}

/// One stream's check: the checking front end fed alongside the spotter's, a ring of its recent
/// feature frames and the buffers one check needs, all made in [`Confirmer::new`]; pushing and
/// checking allocate nothing.
pub struct Confirmer {
    confirm: Arc<Confirm>,
    features: FeatureStream,
    ring: FrameRing,
    window: Vec<f32>,
    scratch: WindowScratch,
    best: Vec<f32>,
}

impl Confirmer {
    /// A check for a stream fed at `input_rate` Hz.
    pub fn new(confirm: Arc<Confirm>, input_rate: u32) -> Result<Self, KwsError> {
        let features = FeatureStream::new(&confirm.frontend, input_rate).map_err(|source| {
            KwsError::FrontEnd {
                rate: input_rate,
                source,
            }
        })?;
        let feature_len = confirm.frontend.feature_len();
        let earliest = confirm
            .config
            .ends
            .iter()
            .fold(0.0f64, |m, e| m.min(*e))
            .abs();
        let ahead = CONFIRM_BLOCK as f64 / f64::from(input_rate.max(1));
        let slots = confirm.window_frames
            + ((earliest + ahead) * confirm.frontend.frame_rate()).ceil() as usize
            + 4;
        let labels = confirm.net.output_shape().len();
        Ok(Confirmer {
            features,
            ring: FrameRing::new(slots, feature_len),
            window: vec![0.0; confirm.window_frames * feature_len],
            scratch: confirm.net.new_window_scratch(confirm.window_frames),
            best: vec![0.0; labels],
            confirm,
        })
    }

    /// The shared model and settings.
    pub fn confirm(&self) -> &Arc<Confirm> {
        &self.confirm
    }

    /// Feeds samples (at the input rate) to the checking front end.
    pub fn push(&mut self, samples: &[f32]) {
        let ring = &mut self.ring;
        self.features.push(samples, |t, frame| ring.store(t, frame));
    }

    /// End of input: drains the checking front end's resampler.
    pub fn finish(&mut self) {
        let ring = &mut self.ring;
        self.features.finish(|t, frame| ring.store(t, frame));
    }

    /// Forgets every past sample.
    pub fn reset(&mut self) {
        self.features.reset();
        self.ring.reset();
    }

    /// Whether the checking model agrees with `hit` (`time`: the hit's time from the last
    /// reset, on the clock of the frames pushed). A hit before any window could be read is kept:
    /// the check only turns down what it has heard.
    pub fn agrees(&mut self, hit: &KeywordHit, time: f64) -> bool {
        let feature_len = self.confirm.frontend.feature_len();
        let Confirmer {
            confirm,
            ring,
            window,
            scratch,
            best,
            ..
        } = self;
        best.fill(0.0);
        let mut windows = 0;
        for end in &confirm.config.ends {
            let n = ring.copy_until(time + end + 1e-6, confirm.window_frames, window);
            if n == 0 {
                continue;
            }
            let p = confirm
                .net
                .forward_window_into(scratch, &window[..n * feature_len], n);
            for (b, v) in best.iter_mut().zip(p) {
                *b = b.max(*v);
            }
            windows += 1;
        }
        if windows == 0 {
            return true;
        }
        let label = hit.label_index;
        let Some(&p) = best.get(label) else {
            return false;
        };
        p >= confirm.config.min_posterior && best.iter().all(|v| *v <= p)
    }
}
