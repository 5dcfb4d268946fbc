//! `FrontendConfig`: the feature definition a model is trained with, read from its spec's `[frontend]` table.

use serde::{Deserialize, Serialize};

use crate::error::AudioError;

/// Which mel scale and filter normalisation the filterbank uses.
///
/// - `htk`: `mel(f) = 2595 * log10(1 + f / 700)`; triangles have unit peak (no area normalisation).
///   Same as `librosa.filters.mel(htk=True, norm=None)`.
/// - `tf`: TensorFlow's `Mfcc` op: `mel(f) = 1127 ln(1 + f / 700)`, triangles linear in mel
///   (not in Hz) with unit peak, and only FFT bins `floor(1.5 + f_min / bin_hz)` ..=
///   `floor(f_max / bin_hz)` contribute (`bin_hz = sample_rate / n_fft`).
/// - `slaney`: the Auditory Toolbox scale, linear below 1 kHz (`f / (200/3)`) and logarithmic above
///   (`15 + ln(f / 1000) / (ln(6.4) / 27)`); each triangle is scaled by `2 / (f_right - f_left)`
///   (equal area). Same as `librosa.filters.mel(htk=False, norm="slaney")`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MelScale {
    /// HTK formula, unit-peak triangles.
    #[default]
    Htk,
    /// Slaney formula, equal-area triangles.
    Slaney,
    /// TensorFlow's `Mfcc` filterbank: triangles linear in mel, its own bin range.
    Tf,
}

/// What the filterbank weighs: the power spectrum `|X_k|^2` or its square root `|X_k|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Spectrum {
    /// `|X_k|^2` (no 1/n_fft scaling).
    #[default]
    Power,
    /// `|X_k|`, as TensorFlow's `Mfcc` op uses (it takes the square root of the squared
    /// magnitude `AudioSpectrogram` gives it).
    Magnitude,
}

/// How the DCT-II of the log-mel values is scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DctScale {
    /// Orthonormal: `sqrt(1/N)` for coefficient 0, `sqrt(2/N)` for the others.
    #[default]
    Orthonormal,
    /// TensorFlow's `Mfcc`: `sqrt(2/N)` for every coefficient, coefficient 0 included.
    Tf,
}

/// The front-end definition: how samples become feature frames.
///
/// Parsed from a model spec's `[frontend]` table (unknown keys are errors), so a model and its
/// features never disagree. All sizes are in samples at `sample_rate`.
///
/// Definition of one frame (`i` = 0, 1, ...):
/// 1. optional pre-emphasis over the continuous signal, `y[n] = x[n] - a * x[n-1]`, `x[-1] = 0`;
/// 2. the `window` samples `[i*hop, i*hop + window)` times a periodic Hann window
///    `w[n] = 0.5 - 0.5 cos(2 pi n / window)`, zero-padded to `n_fft`;
/// 3. power spectrum `|X_k|^2`, `k = 0..=n_fft/2` (no 1/n_fft scaling), or its square root
///    `|X_k|` with `spectrum = "magnitude"`;
/// 4. mel filterbank of `n_mels` triangles between `f_min` and `f_max` ([`MelScale`]);
/// 5. `ln(max(mel_power, log_floor))` (natural log);
/// 6. if `n_mfcc` is set: DCT-II over the `n_mels` log-mel values, first `n_mfcc` kept
///    (orthonormal, or TensorFlow's scaling with `dct = "tf"`, [`DctScale`]);
/// 7. if `mean`/`std` are set: `(x - mean[j]) / std[j]` per feature.
///
/// The first frame waits for a full window (no padding); a clip of `n` samples gives
/// `(n - window) / hop + 1` frames (0 if `n < window`). Frame `i`'s timestamp is the end of its
/// window, `(i*hop + window) / sample_rate` seconds, in the original input timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontendConfig {
    /// Model sample rate in Hz (default 16000).
    pub sample_rate: u32,
    /// Analysis window length in samples (default 640 = 40 ms).
    pub window: usize,
    /// Hop between frames in samples (default 320 = 20 ms); at most 20 ms and at most `window`.
    pub hop: usize,
    /// FFT size (default 1024); at least `window`, any size (realfft handles non powers of two).
    pub n_fft: usize,
    /// Number of mel bands (default 40).
    pub n_mels: usize,
    /// Lowest filterbank frequency in Hz (default 20).
    pub f_min: f32,
    /// Highest filterbank frequency in Hz (default: `sample_rate / 2`).
    pub f_max: Option<f32>,
    /// Mel scale and filter normalisation (default `htk`).
    pub mel_scale: MelScale,
    /// What the filterbank weighs (default `power`).
    pub spectrum: Spectrum,
    /// Scaling of the DCT that makes MFCCs (default `orthonormal`).
    pub dct: DctScale,
    /// Floor applied before the natural log (default 1e-6).
    pub log_floor: f32,
    /// Pre-emphasis coefficient, e.g. 0.97 (default: none).
    pub preemphasis: Option<f32>,
    /// When set, output this many MFCCs (orthonormal DCT-II of the log-mel), else log-mel.
    pub n_mfcc: Option<usize>,
    /// Per-feature mean subtracted from each output (length `feature_len()`).
    pub mean: Option<Vec<f32>>,
    /// Per-feature standard deviation each output is divided by (length `feature_len()`, all > 0).
    pub std: Option<Vec<f32>>,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            sample_rate: 16000,
            window: 640,
            hop: 320,
            n_fft: 1024,
            n_mels: 40,
            f_min: 20.0,
            f_max: None,
            mel_scale: MelScale::Htk,
            spectrum: Spectrum::Power,
            dct: DctScale::Orthonormal,
            log_floor: 1e-6,
            preemphasis: None,
            n_mfcc: None,
            mean: None,
            std: None,
        }
    }
}

/// Lowest model sample rate accepted by [`FrontendConfig::validate`].
pub const MIN_SAMPLE_RATE: u32 = 1000;
/// Highest sample rate accepted anywhere (WAV headers, model, stream input).
pub const MAX_SAMPLE_RATE: u32 = 384_000;

impl FrontendConfig {
    /// Parses and validates a spec's `[frontend]` table; missing keys take the defaults.
    pub fn from_table(t: &toml::Table) -> Result<Self, AudioError> {
        let cfg: FrontendConfig = t
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| AudioError::config("frontend", e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and validates a TOML document holding only the frontend keys.
    pub fn from_toml_str(s: &str) -> Result<Self, AudioError> {
        let t: toml::Table = s
            .parse()
            .map_err(|e: toml::de::Error| AudioError::config("frontend", e.to_string()))?;
        Self::from_table(&t)
    }

    /// Checks every field; the error names the field, expected and actual values.
    pub fn validate(&self) -> Result<(), AudioError> {
        let bad = |r: String| Err(AudioError::config("frontend", r));
        let sr = self.sample_rate;
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sr) {
            return bad(format!(
                "sample_rate = {sr}, expected {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE}"
            ));
        }
        if self.window < 2 || self.window > 1 << 20 {
            return bad(format!("window = {}, expected 2..=1048576", self.window));
        }
        let max_hop = sr as usize / 50; // 20 ms
        if self.hop == 0 || self.hop > max_hop || self.hop > self.window {
            return bad(format!(
                "hop = {}, expected 1..={} (at most 20 ms and at most window = {})",
                self.hop,
                max_hop.min(self.window),
                self.window
            ));
        }
        if self.n_fft < self.window || self.n_fft > 1 << 20 {
            return bad(format!(
                "n_fft = {}, expected window ({}) ..= 1048576",
                self.n_fft, self.window
            ));
        }
        if self.n_mels == 0 || self.n_mels > self.n_fft / 2 + 1 {
            return bad(format!(
                "n_mels = {}, expected 1..={} (n_fft/2 + 1)",
                self.n_mels,
                self.n_fft / 2 + 1
            ));
        }
        let nyq = sr as f32 / 2.0;
        let f_max = self.f_max();
        if !(self.f_min.is_finite() && self.f_min >= 0.0) {
            return bad(format!("f_min = {}, expected >= 0", self.f_min));
        }
        if !(f_max.is_finite() && f_max > self.f_min && f_max <= nyq) {
            return bad(format!(
                "f_max = {f_max}, expected f_min ({}) < f_max <= sample_rate/2 ({nyq})",
                self.f_min
            ));
        }
        if !(self.log_floor.is_finite() && self.log_floor > 0.0) {
            return bad(format!("log_floor = {}, expected > 0", self.log_floor));
        }
        if let Some(a) = self.preemphasis {
            if !(a.is_finite() && (0.0..1.0).contains(&a)) {
                return bad(format!("preemphasis = {a}, expected 0 <= a < 1"));
            }
        }
        if let Some(m) = self.n_mfcc {
            if m == 0 || m > self.n_mels {
                return bad(format!(
                    "n_mfcc = {m}, expected 1..=n_mels ({})",
                    self.n_mels
                ));
            }
        }
        let len = self.feature_len();
        if let Some(mean) = &self.mean {
            if mean.len() != len {
                return bad(format!(
                    "mean has {} values, expected feature_len = {len}",
                    mean.len()
                ));
            }
            if let Some(v) = mean.iter().find(|v| !v.is_finite()) {
                return bad(format!("mean contains non-finite value {v}"));
            }
        }
        if let Some(std) = &self.std {
            if std.len() != len {
                return bad(format!(
                    "std has {} values, expected feature_len = {len}",
                    std.len()
                ));
            }
            if let Some(v) = std.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return bad(format!("std contains {v}, expected finite values > 0"));
            }
        }
        Ok(())
    }

    /// Values per feature frame: `n_mfcc` if set, else `n_mels`.
    pub fn feature_len(&self) -> usize {
        self.n_mfcc.unwrap_or(self.n_mels)
    }

    /// Feature frames per second: `sample_rate / hop`.
    pub fn frame_rate(&self) -> f64 {
        self.sample_rate as f64 / self.hop as f64
    }

    /// The model sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The effective upper filterbank edge in Hz (`f_max` or `sample_rate / 2`).
    pub fn f_max(&self) -> f32 {
        self.f_max.unwrap_or(self.sample_rate as f32 / 2.0)
    }

    /// Number of frames a clip of `n_samples` (at `sample_rate`) gives.
    pub fn n_frames(&self, n_samples: usize) -> usize {
        if n_samples < self.window || self.hop == 0 {
            0
        } else {
            (n_samples - self.window) / self.hop + 1
        }
    }

    /// Timestamp (seconds, end of its window) of frame `i`.
    pub fn frame_time(&self, i: usize) -> f64 {
        (i * self.hop + self.window) as f64 / self.sample_rate as f64
    }
}
