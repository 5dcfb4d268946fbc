//! The log-mel / MFCC front end: one feature frame from one window of samples, plus the batch `FeatureExtractor`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::config::{DctScale, FrontendConfig, MelScale, Spectrum};
use crate::error::AudioError;

/// Hz -> mel on the chosen scale.
pub fn hz_to_mel(f: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + f / 700.0).log10(),
        MelScale::Tf => 1127.0 * (f / 700.0).ln_1p(),
        MelScale::Slaney => {
            let f_sp = 200.0 / 3.0;
            let min_log_hz = 1000.0;
            let min_log_mel = min_log_hz / f_sp;
            let logstep = 6.4f64.ln() / 27.0;
            if f >= min_log_hz {
                min_log_mel + (f / min_log_hz).ln() / logstep
            } else {
                f / f_sp
            }
        }
    }
}

/// mel -> Hz on the chosen scale (inverse of [`hz_to_mel`]).
pub fn mel_to_hz(m: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(m / 2595.0) - 1.0),
        MelScale::Tf => 700.0 * (m / 1127.0).exp_m1(),
        MelScale::Slaney => {
            let f_sp = 200.0 / 3.0;
            let min_log_hz = 1000.0;
            let min_log_mel = min_log_hz / f_sp;
            let logstep = 6.4f64.ln() / 27.0;
            if m >= min_log_mel {
                min_log_hz * (logstep * (m - min_log_mel)).exp()
            } else {
                f_sp * m
            }
        }
    }
}

/// The `n_mels + 2` band edges in Hz: band `m` rises from edge `m` to `m+1` and falls to `m+2`.
pub fn mel_band_edges(cfg: &FrontendConfig) -> Vec<f64> {
    let lo = hz_to_mel(cfg.f_min as f64, cfg.mel_scale);
    let hi = hz_to_mel(cfg.f_max() as f64, cfg.mel_scale);
    let n = cfg.n_mels + 2;
    (0..n)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n - 1) as f64, cfg.mel_scale))
        .collect()
}

/// Sparse triangular filterbank: band `m` covers FFT bins `start[m]..start[m] + len`, weights flat.
#[derive(Clone, Debug)]
struct MelBank {
    start: Vec<usize>,
    offset: Vec<usize>, // into weights; n_mels + 1 entries
    weights: Vec<f32>,
}

impl MelBank {
    fn new(cfg: &FrontendConfig) -> Self {
        if cfg.mel_scale == MelScale::Tf {
            return Self::tf(cfg);
        }
        let edges = mel_band_edges(cfg);
        let n_bins = cfg.n_fft / 2 + 1;
        let bin_hz = cfg.sample_rate as f64 / cfg.n_fft as f64;
        let bands = (0..cfg.n_mels).map(|m| {
            let (l, c, r) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = match cfg.mel_scale {
                MelScale::Htk | MelScale::Tf => 1.0,
                MelScale::Slaney => 2.0 / (r - l),
            };
            (0..n_bins)
                .filter_map(|k| {
                    let f = k as f64 * bin_hz;
                    let w = ((f - l) / (c - l)).min((r - f) / (r - c)).max(0.0) * norm;
                    (w > 0.0).then_some((k, w as f32))
                })
                .collect()
        });
        Self::from_bands(bands)
    }

    /// Packs each band's non-zero `(bin, weight)` pairs (ascending bins). Triangles are convex,
    /// so a band's non-zero bins are contiguous: it is stored from its first to its last bin.
    fn from_bands(bands: impl Iterator<Item = Vec<(usize, f32)>>) -> Self {
        let mut start = Vec::new();
        let mut offset = vec![0];
        let mut weights = Vec::new();
        for band in bands {
            let s = band.first().map_or(0, |b| b.0);
            let last = band.last().map_or(s, |b| b.0 + 1);
            let mut dense = vec![0.0f32; last - s];
            for (k, w) in band {
                dense[k - s] = w;
            }
            start.push(s);
            weights.extend_from_slice(&dense);
            offset.push(weights.len());
        }
        MelBank {
            start,
            offset,
            weights,
        }
    }

    /// TensorFlow's `Mfcc` filterbank: band edges evenly spaced in mel, each bin's weight
    /// linear in its mel value between the edges, and only bins
    /// `floor(1.5 + f_min / bin_hz) ..= floor(f_max / bin_hz)`.
    fn tf(cfg: &FrontendConfig) -> Self {
        let scale = MelScale::Tf;
        let lo = hz_to_mel(cfg.f_min as f64, scale);
        let hi = hz_to_mel(cfg.f_max() as f64, scale);
        let n = cfg.n_mels + 2;
        let edges: Vec<f64> = (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect();
        let n_bins = cfg.n_fft / 2 + 1;
        let bin_hz = cfg.sample_rate as f64 / cfg.n_fft as f64;
        let first_bin = (1.5 + cfg.f_min as f64 / bin_hz) as usize;
        let last_bin = ((cfg.f_max() as f64 / bin_hz) as usize).min(n_bins - 1);
        let bands = (0..cfg.n_mels).map(|m| {
            let (l, c, r) = (edges[m], edges[m + 1], edges[m + 2]);
            (first_bin..=last_bin)
                .filter_map(|k| {
                    let mel = hz_to_mel(k as f64 * bin_hz, scale);
                    let w = if mel > l && mel <= c {
                        (mel - l) / (c - l)
                    } else if mel > c && mel < r {
                        (r - mel) / (r - c)
                    } else {
                        0.0
                    };
                    (w > 0.0).then_some((k, w as f32))
                })
                .collect()
        });
        Self::from_bands(bands)
    }

    fn apply(&self, power: &[f32], out: &mut [f32]) {
        for (m, o) in out.iter_mut().enumerate() {
            let w = &self.weights[self.offset[m]..self.offset[m + 1]];
            let p = &power[self.start[m]..self.start[m] + w.len()];
            *o = w.iter().zip(p).map(|(a, b)| a * b).sum();
        }
    }
}

/// Computes one feature frame from one window of (already pre-emphasised) samples.
/// All buffers and the FFT plan are made in `new`; `compute` allocates nothing.
pub(crate) struct FrameCore {
    n_mels: usize,
    magnitude: bool,
    log_floor: f32,
    hann: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    fft_in: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    bank: MelBank,
    logmel: Vec<f32>,
    dct: Option<Vec<f32>>, // n_mfcc x n_mels, row-major
    mean: Option<Vec<f32>>,
    std: Option<Vec<f32>>,
    out: Vec<f32>,
}

impl FrameCore {
    /// `cfg` must have passed [`FrontendConfig::validate`].
    pub(crate) fn new(cfg: &FrontendConfig) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(cfg.n_fft);
        let hann = (0..cfg.window)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / cfg.window as f64).cos())
                    as f32
            })
            .collect();
        let dct = cfg.n_mfcc.map(|n_mfcc| {
            let n = cfg.n_mels as f64;
            let mut d = Vec::with_capacity(n_mfcc * cfg.n_mels);
            for k in 0..n_mfcc {
                let s = if k == 0 && cfg.dct == DctScale::Orthonormal {
                    (1.0 / n).sqrt()
                } else {
                    (2.0 / n).sqrt()
                };
                for i in 0..cfg.n_mels {
                    let c = (std::f64::consts::PI * k as f64 * (2.0 * i as f64 + 1.0) / (2.0 * n))
                        .cos();
                    d.push((s * c) as f32);
                }
            }
            d
        });
        FrameCore {
            n_mels: cfg.n_mels,
            magnitude: cfg.spectrum == Spectrum::Magnitude,
            log_floor: cfg.log_floor,
            hann,
            fft_in: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; cfg.n_fft / 2 + 1],
            bank: MelBank::new(cfg),
            logmel: vec![0.0; cfg.n_mels],
            dct,
            mean: cfg.mean.clone(),
            std: cfg.std.clone(),
            out: vec![0.0; cfg.feature_len()],
            fft,
        }
    }

    /// One feature frame from exactly `window` samples. Allocates nothing.
    pub(crate) fn compute(&mut self, frame: &[f32]) -> &[f32] {
        let w = self.hann.len();
        for ((d, s), h) in self.fft_in[..w].iter_mut().zip(frame).zip(&self.hann) {
            *d = s * h;
        }
        self.fft_in[w..].fill(0.0);
        // Lengths are fixed by construction, so this cannot fail.
        let _ =
            self.fft
                .process_with_scratch(&mut self.fft_in, &mut self.spectrum, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        if self.magnitude {
            self.power.iter_mut().for_each(|p| *p = p.sqrt());
        }
        self.bank.apply(&self.power, &mut self.logmel);
        for v in self.logmel.iter_mut() {
            *v = v.max(self.log_floor).ln();
        }
        match &self.dct {
            Some(d) => {
                for (o, row) in self.out.iter_mut().zip(d.chunks_exact(self.n_mels)) {
                    *o = row.iter().zip(&self.logmel).map(|(a, b)| a * b).sum();
                }
            }
            None => self.out.copy_from_slice(&self.logmel),
        }
        if let Some(mean) = &self.mean {
            for (o, m) in self.out.iter_mut().zip(mean) {
                *o -= m;
            }
        }
        if let Some(std) = &self.std {
            for (o, s) in self.out.iter_mut().zip(std) {
                *o /= s;
            }
        }
        &self.out
    }
}

/// Pre-emphasis `y[n] = x[n] - a * x[n-1]` with state, shared by batch and stream so both agree bit for bit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreEmphasis {
    a: f32,
    prev: f32,
}

impl PreEmphasis {
    pub(crate) fn new(a: f32) -> Self {
        PreEmphasis { a, prev: 0.0 }
    }
    #[inline]
    pub(crate) fn apply(&mut self, x: f32) -> f32 {
        let y = x - self.a * self.prev;
        self.prev = x;
        y
    }
    pub(crate) fn reset(&mut self) {
        self.prev = 0.0;
    }
}

/// Batch feature extraction for training and tests (allocates its output).
///
/// Gives exactly the frames (same values, same count) that a [`crate::FeatureStream`] at the
/// model rate gives for the same samples, whatever the block sizes pushed to the stream.
pub struct FeatureExtractor {
    cfg: FrontendConfig,
    core: FrameCore,
    emph: Vec<f32>,
}

impl FeatureExtractor {
    /// A new extractor.
    ///
    /// # Panics
    /// If `cfg` is invalid. Configs from [`FrontendConfig::from_table`] and
    /// [`FrontendConfig::default`] are always valid; use [`FeatureExtractor::try_new`] for
    /// hand-built ones.
    pub fn new(cfg: &FrontendConfig) -> Self {
        match Self::try_new(cfg) {
            Ok(f) => f,
            Err(e) => panic!("FeatureExtractor::new: {e}"),
        }
    }

    /// A new extractor, or the reason `cfg` is invalid.
    pub fn try_new(cfg: &FrontendConfig) -> Result<Self, AudioError> {
        cfg.validate()?;
        Ok(FeatureExtractor {
            cfg: cfg.clone(),
            core: FrameCore::new(cfg),
            emph: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FrontendConfig {
        &self.cfg
    }

    /// All feature frames of a clip at `cfg.sample_rate`: `n_frames * feature_len` values,
    /// frame-major (`n_frames = cfg.n_frames(samples.len())`; frame `i` ends at
    /// `cfg.frame_time(i)` seconds). No padding: a clip shorter than one window gives no frames.
    pub fn clip(&mut self, samples: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        self.clip_into(samples, &mut out);
        out
    }

    /// Like [`FeatureExtractor::clip`], into a reused vector (cleared first).
    pub fn clip_into(&mut self, samples: &[f32], out: &mut Vec<f32>) {
        out.clear();
        let n = self.cfg.n_frames(samples.len());
        out.reserve(n * self.cfg.feature_len());
        let src: &[f32] = match self.cfg.preemphasis {
            Some(a) => {
                let mut p = PreEmphasis::new(a);
                self.emph.clear();
                self.emph.extend(samples.iter().map(|&x| p.apply(x)));
                &self.emph
            }
            None => samples,
        };
        for i in 0..n {
            let s = i * self.cfg.hop;
            out.extend_from_slice(self.core.compute(&src[s..s + self.cfg.window]));
        }
    }
}
