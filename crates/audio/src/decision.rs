//! Keyword decisions over posterior frames: moving-average smoothing, threshold, refractory period, event start/end.

use serde::{Deserialize, Serialize};

use crate::error::AudioError;

/// Decision settings, from a model spec's `[decision]` table (unknown keys are errors).
///
/// Defaults: `smoothing = 0.3` s, `threshold = 0.6`, `release = 0.3`, `refractory = 1.0` s,
/// `onset = 0.3`, `max_word = 1.0` s, `non_keywords = ["_silence_", "_unknown_"]`,
/// `clip_tail = 0.0` s, `window = 0.0` s (none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionConfig {
    /// Length in seconds of the moving average over posterior frames (at least one frame).
    pub smoothing: f64,
    /// A keyword fires when its smoothed posterior reaches this value (0 < threshold <= 1).
    pub threshold: f32,
    /// After a keyword fires, it fires again only once its smoothed posterior has fallen below
    /// this value (0 <= release <= threshold): a word the model keeps "hearing" while it is in
    /// its pooling window gives one event, however long that is.
    pub release: f32,
    /// After an event, no other event for this many seconds (one event per spoken word).
    pub refractory: f64,
    /// A label's raw posterior at or above this value counts as "risen"; the first frame of
    /// the current risen run is the event's start (0 < onset <= 1).
    pub onset: f32,
    /// An event's start is never earlier than `end - max_word` seconds.
    pub max_word: f64,
    /// Labels that never fire (silence, unknown words, background).
    pub non_keywords: Vec<String>,
    /// Classifying a one-word clip (training, `sepstream eval` per clip): the clip is followed
    /// by this many seconds of silence and the posterior at the end of it is the answer, so a
    /// causal model has heard the whole word, as it has in a stream when it decides (0 = the
    /// posterior at the clip's last sample). Not used by the stream detector.
    pub clip_tail: f64,
    /// The fixed window in seconds a model made for whole clips classifies at once (imported
    /// graphs: 1 s); `sepstream eval --windowed` gives each clip exactly this much audio,
    /// zero padded or cut, and runs the network over that window alone. 0 = none.
    pub window: f64,
    /// A second-stage check of every event by another model (`[decision.confirm]`); none by
    /// default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<ConfirmConfig>,
}

/// The `[decision.confirm]` table: before an event goes out, a second model made for fixed
/// windows (e.g. an imported DS-CNN) reads the audio of windows ending where `ends` say and the
/// event is kept only if, over those windows, the event's keyword has that model's highest
/// posterior of all labels and at least `min_posterior`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmConfig {
    /// The checking model: the name of a bundled model (`sepstream models`) or a spec file,
    /// relative to the spec that names it. It needs the same labels and a `[decision] window`.
    pub model: String,
    /// Where the checked windows end, in seconds relative to the event (each -2..=0: only
    /// audio already heard, so the check adds no delay). Default: -0.2, -0.1 and 0.
    #[serde(default = "ConfirmConfig::default_ends")]
    pub ends: Vec<f64>,
    /// The keyword's posterior (its highest over the windows) must reach this (0..=1;
    /// default 0: the keyword only has to be the checking model's first choice).
    #[serde(default)]
    pub min_posterior: f32,
}

impl ConfirmConfig {
    /// Window ends used when `ends` is not given, seconds relative to the event.
    pub const DEFAULT_ENDS: [f64; 3] = [-0.2, -0.1, 0.0];

    fn default_ends() -> Vec<f64> {
        Self::DEFAULT_ENDS.to_vec()
    }

    /// A check by `model` with the default window ends and no posterior floor.
    pub fn with_model(model: impl Into<String>) -> Self {
        ConfirmConfig {
            model: model.into(),
            ends: Self::default_ends(),
            min_posterior: 0.0,
        }
    }

    /// Checks every field; the error names the field and the expected range.
    pub fn validate(&self) -> Result<(), AudioError> {
        let bad = |r: String| Err(AudioError::config("decision.confirm", r));
        if self.model.trim().is_empty() {
            return bad("model is empty, expected a bundled model's name or a spec file".into());
        }
        if self.ends.is_empty() || self.ends.len() > 16 {
            return bad(format!(
                "ends has {} values, expected 1..=16",
                self.ends.len()
            ));
        }
        if let Some(e) = self
            .ends
            .iter()
            .find(|e| !(e.is_finite() && (-2.0..=0.0).contains(*e)))
        {
            return bad(format!("ends holds {e}, expected -2..=0 s"));
        }
        if !(0.0..=1.0).contains(&self.min_posterior) {
            return bad(format!(
                "min_posterior = {}, expected 0..=1",
                self.min_posterior
            ));
        }
        Ok(())
    }
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            smoothing: 0.3,
            threshold: 0.6,
            release: 0.3,
            refractory: 1.0,
            onset: 0.3,
            max_word: 1.0,
            non_keywords: vec!["_silence_".into(), "_unknown_".into()],
            clip_tail: 0.0,
            window: 0.0,
            confirm: None,
        }
    }
}

impl DecisionConfig {
    /// Parses and validates a spec's `[decision]` table; missing keys take the defaults.
    pub fn from_table(t: &toml::Table) -> Result<Self, AudioError> {
        let cfg: DecisionConfig = t
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| AudioError::config("decision", e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every field; the error names the field and the expected range.
    pub fn validate(&self) -> Result<(), AudioError> {
        let bad = |r: String| Err(AudioError::config("decision", r));
        if !(self.smoothing.is_finite() && self.smoothing >= 0.0 && self.smoothing <= 60.0) {
            return bad(format!("smoothing = {}, expected 0..=60 s", self.smoothing));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return bad(format!(
                "threshold = {}, expected 0 < t <= 1",
                self.threshold
            ));
        }
        if !(self.release >= 0.0 && self.release <= self.threshold) {
            return bad(format!(
                "release = {}, expected 0 <= release <= threshold ({})",
                self.release, self.threshold
            ));
        }
        if !(self.refractory.is_finite() && self.refractory >= 0.0) {
            return bad(format!("refractory = {}, expected >= 0 s", self.refractory));
        }
        if !(self.onset > 0.0 && self.onset <= 1.0) {
            return bad(format!("onset = {}, expected 0 < onset <= 1", self.onset));
        }
        if !(self.max_word.is_finite() && self.max_word >= 0.0) {
            return bad(format!("max_word = {}, expected >= 0 s", self.max_word));
        }
        if !(self.clip_tail.is_finite() && (0.0..=2.0).contains(&self.clip_tail)) {
            return bad(format!("clip_tail = {}, expected 0..=2 s", self.clip_tail));
        }
        if !(self.window.is_finite() && (0.0..=60.0).contains(&self.window)) {
            return bad(format!("window = {}, expected 0..=60 s", self.window));
        }
        if let Some(c) = &self.confirm {
            c.validate()?;
        }
        Ok(())
    }
}

/// A detected keyword, without its name: `Copy`, made without allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeywordHit {
    /// Index of the keyword in the model's labels.
    pub label_index: usize,
    /// Estimated start of the word, seconds (see [`KeywordDetector`]).
    pub start: f64,
    /// Time the smoothed posterior reached the threshold, seconds.
    pub end: f64,
    /// The smoothed posterior at `end`.
    pub score: f32,
}

/// A detected keyword with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct KeywordEvent {
    /// The label, e.g. `"yes"`.
    pub keyword: String,
    /// Index of the keyword in the model's labels.
    pub label_index: usize,
    /// Estimated start of the word, seconds (see [`KeywordDetector`]).
    pub start: f64,
    /// Time the smoothed posterior reached the threshold, seconds.
    pub end: f64,
    /// The smoothed posterior at `end`.
    pub score: f32,
}

/// Turns a stream of posterior frames (softmax outputs) into keyword events.
///
/// Per frame at time `t` (seconds, end of the frame):
/// 1. each label's posterior is averaged over the last `smoothing` seconds of frames
///    (`w = max(1, round(smoothing / frame_period))` frames; fewer at the very start);
/// 2. the keyword label (not in `non_keywords`) with the highest smoothed score fires if that
///    score is `>= threshold`, no event fired in the last `refractory` seconds, and the label is
///    armed: a label is disarmed when it fires and re-armed once its smoothed score falls below
///    `release`;
/// 3. the event's `end` is `t`, the frame where the smoothed score crossed the threshold
///    (emitting at the crossing keeps latency low; the peak would need waiting);
///    its `start` is the time of the first frame of the current run of frames where the label's
///    raw posterior stayed `>= onset` (when it "first rose"), minus one frame period (so it
///    marks that frame's beginning), and never earlier than `end - max_word`.
///
/// All buffers are made in `new`; [`KeywordDetector::push_hit`] never allocates, and
/// [`KeywordDetector::push`] allocates only the label string of an event it returns.
pub struct KeywordDetector {
    cfg: DecisionConfig,
    labels: Vec<String>,
    is_keyword: Vec<bool>,
    frame_period: f64,
    w: usize,
    ring: Vec<f32>, // w x n_labels
    pos: usize,
    count: usize,
    sums: Vec<f64>,
    rise: Vec<Option<f64>>,
    armed: Vec<bool>,
    last_event: Option<f64>,
}

impl KeywordDetector {
    /// A detector for a model with `labels`, producing a posterior frame every `frame_period_s`
    /// seconds. `cfg` should be validated ([`DecisionConfig::from_table`] does); out-of-range
    /// values are clamped so this never panics.
    pub fn new(cfg: &DecisionConfig, labels: &[String], frame_period_s: f64) -> Self {
        let frame_period = if frame_period_s.is_finite() && frame_period_s > 0.0 {
            frame_period_s
        } else {
            0.02
        };
        let w = if cfg.smoothing.is_finite() && cfg.smoothing > 0.0 {
            ((cfg.smoothing / frame_period).round() as usize).clamp(1, 1 << 16)
        } else {
            1
        };
        let n = labels.len();
        KeywordDetector {
            is_keyword: labels
                .iter()
                .map(|l| !cfg.non_keywords.iter().any(|k| k == l))
                .collect(),
            labels: labels.to_vec(),
            cfg: cfg.clone(),
            frame_period,
            w,
            ring: vec![0.0; w * n],
            pos: 0,
            count: 0,
            sums: vec![0.0; n],
            rise: vec![None; n],
            armed: vec![true; n],
            last_event: None,
        }
    }

    /// Frames in the moving average.
    pub fn smoothing_frames(&self) -> usize {
        self.w
    }

    /// The labels.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// One posterior frame at time `t`; `Some(event)` when a keyword fires.
    pub fn push(&mut self, t: f64, posteriors: &[f32]) -> Option<KeywordEvent> {
        let h = self.push_hit(t, posteriors)?;
        Some(KeywordEvent {
            keyword: self.labels[h.label_index].clone(),
            label_index: h.label_index,
            start: h.start,
            end: h.end,
            score: h.score,
        })
    }

    /// Like [`KeywordDetector::push`], returning the label index only; never allocates.
    /// A frame whose length differs from the number of labels uses the common prefix
    /// (missing values count as 0).
    pub fn push_hit(&mut self, t: f64, posteriors: &[f32]) -> Option<KeywordHit> {
        let n = self.labels.len();
        if n == 0 {
            return None;
        }
        let slot = &mut self.ring[self.pos * n..(self.pos + 1) * n];
        for (j, old) in slot.iter_mut().enumerate() {
            let p = posteriors.get(j).copied().unwrap_or(0.0);
            let p = if p.is_finite() { p } else { 0.0 };
            self.sums[j] += p as f64 - *old as f64;
            *old = p;
            if p >= self.cfg.onset {
                if self.rise[j].is_none() {
                    self.rise[j] = Some(t);
                }
            } else {
                self.rise[j] = None;
            }
        }
        self.pos = (self.pos + 1) % self.w;
        self.count = (self.count + 1).min(self.w);
        if self.pos == 0 {
            // Re-sum once per window so rounding never drifts.
            for (j, s) in self.sums.iter_mut().enumerate() {
                *s = (0..self.w).map(|r| self.ring[r * n + j] as f64).sum();
            }
        }

        let mut best: Option<(usize, f32)> = None;
        for j in 0..n {
            if !self.is_keyword[j] {
                continue;
            }
            let s = (self.sums[j] / self.count as f64) as f32;
            if s < self.cfg.release {
                self.armed[j] = true;
            }
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((j, s));
            }
        }
        let (j, score) = best?;
        if score < self.cfg.threshold || !self.armed[j] {
            return None;
        }
        if let Some(last) = self.last_event {
            if t - last < self.cfg.refractory {
                return None;
            }
        }
        self.last_event = Some(t);
        self.armed[j] = false;
        let earliest = t - self.cfg.max_word;
        let start = match self.rise[j] {
            Some(r) => (r - self.frame_period).max(earliest),
            None => earliest,
        };
        Some(KeywordHit {
            label_index: j,
            start: start.min(t),
            end: t,
            score,
        })
    }

    /// Forgets all past frames and events.
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.sums.fill(0.0);
        self.rise.fill(None);
        self.armed.fill(true);
        self.pos = 0;
        self.count = 0;
        self.last_event = None;
    }
}
