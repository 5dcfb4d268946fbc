//! `FeatureStream`: arbitrary sample blocks in, timestamped feature frames out, same frames as the batch extractor, no allocation per hop.

use crate::config::FrontendConfig;
use crate::error::AudioError;
use crate::frontend::{FrameCore, PreEmphasis};
use crate::resample::StreamResampler;

/// Frames a model-rate signal: keeps the last `window` samples, emits a frame every `hop`.
struct Framer {
    window: usize,
    hop: usize,
    rate: f64,
    buf: Vec<f32>,
    filled: usize,
    emph: Option<PreEmphasis>,
    next_frame: u64,
    core: FrameCore,
}

impl Framer {
    fn push(&mut self, mut samples: &[f32], on_frame: &mut impl FnMut(f64, &[f32])) {
        while !samples.is_empty() {
            let n = (self.window - self.filled).min(samples.len());
            let dst = &mut self.buf[self.filled..self.filled + n];
            match &mut self.emph {
                Some(p) => {
                    for (d, &x) in dst.iter_mut().zip(&samples[..n]) {
                        *d = p.apply(x);
                    }
                }
                None => dst.copy_from_slice(&samples[..n]),
            }
            self.filled += n;
            samples = &samples[n..];
            if self.filled == self.window {
                let t = (self.next_frame as f64 * self.hop as f64 + self.window as f64) / self.rate;
                self.next_frame += 1;
                on_frame(t, self.core.compute(&self.buf));
                self.buf.copy_within(self.hop.., 0);
                self.filled = self.window - self.hop;
            }
        }
    }

    fn reset(&mut self) {
        self.filled = 0;
        self.next_frame = 0;
        if let Some(p) = &mut self.emph {
            p.reset();
        }
    }
}

/// Streaming feature extraction: push blocks of any size (1 sample to a whole file) at
/// `input_rate`; get feature frames with timestamps.
///
/// - If `input_rate != cfg.sample_rate`, the input goes through a [`StreamResampler`] whose
///   delay is removed, so timestamps stay in the input timeline (the delay only adds latency).
/// - Frame `i` covers model-rate samples `[i*hop, i*hop + window)`; its timestamp is the end
///   of that window, `(i*hop + window) / sample_rate` seconds after the first pushed sample.
///   The first frame waits for a full window (no padding).
/// - At the model rate, the frames equal [`crate::FeatureExtractor::clip`] of the
///   concatenated input exactly, whatever the block sizes.
/// - All buffers and the FFT plan are made in `new`; `push` allocates nothing.
pub struct FeatureStream {
    cfg: FrontendConfig,
    input_rate: u32,
    framer: Framer,
    resampler: Option<StreamResampler>,
}

impl FeatureStream {
    /// A stream for `cfg` fed at `input_rate` Hz.
    pub fn new(cfg: &FrontendConfig, input_rate: u32) -> Result<Self, AudioError> {
        cfg.validate()?;
        let resampler = if input_rate == cfg.sample_rate {
            None
        } else {
            Some(StreamResampler::new(input_rate, cfg.sample_rate)?)
        };
        Ok(FeatureStream {
            framer: Framer {
                window: cfg.window,
                hop: cfg.hop,
                rate: cfg.sample_rate as f64,
                buf: vec![0.0; cfg.window],
                filled: 0,
                emph: cfg.preemphasis.map(PreEmphasis::new),
                next_frame: 0,
                core: FrameCore::new(cfg),
            },
            cfg: cfg.clone(),
            input_rate,
            resampler,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FrontendConfig {
        &self.cfg
    }

    /// The rate `push` expects, in Hz.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// Values per frame (`cfg.feature_len()`).
    pub fn feature_len(&self) -> usize {
        self.cfg.feature_len()
    }

    /// Extra latency of the resampler in model-rate samples (0 when none is needed).
    pub fn resampler_delay(&self) -> usize {
        self.resampler.as_ref().map_or(0, |r| r.delay())
    }

    /// Frames emitted so far.
    pub fn frames_emitted(&self) -> u64 {
        self.framer.next_frame
    }

    /// Pushes any number of samples; calls `on_frame(timestamp_seconds, &frame)` per new
    /// feature frame, in order. Allocates nothing.
    pub fn push(&mut self, samples: &[f32], mut on_frame: impl FnMut(f64, &[f32])) {
        match &mut self.resampler {
            None => self.framer.push(samples, &mut on_frame),
            Some(r) => {
                let framer = &mut self.framer;
                r.push(samples, |out| framer.push(out, &mut on_frame));
            }
        }
    }

    /// End of input: drains the resampler's delayed tail into the framer (a no-op without
    /// resampler), emitting the frames it completes. Call [`FeatureStream::reset`] before reuse.
    pub fn finish(&mut self, mut on_frame: impl FnMut(f64, &[f32])) {
        if let Some(r) = &mut self.resampler {
            let framer = &mut self.framer;
            r.flush(|out| framer.push(out, &mut on_frame));
        }
    }

    /// Forgets all past samples: the next push starts a new stream at time 0.
    pub fn reset(&mut self) {
        self.framer.reset();
        if let Some(r) = &mut self.resampler {
            r.reset();
        }
    }
}

/// Streams an audio file (any format [`crate::AudioReader`] reads; `-` is standard input)
/// through a [`FeatureStream`] for `cfg` block by block (never the whole file in memory),
/// resampling as needed and flushing the resampler at the end; calls
/// `on_frame(timestamp_seconds, &frame)` per frame. Returns what the stream was.
///
/// On a stream damaged part of the way in, every frame before the damage has been delivered
/// when the error is returned.
pub fn stream_audio(
    path: &std::path::Path,
    cfg: &FrontendConfig,
    mut on_frame: impl FnMut(f64, &[f32]),
) -> Result<crate::AudioInfo, AudioError> {
    let mut reader = crate::AudioReader::open(path)?;
    let info = reader.info().clone();
    let mut stream = FeatureStream::new(cfg, info.sample_rate)?;
    let mut block = Vec::new();
    loop {
        match reader.read_block(&mut block) {
            Ok(0) => break,
            Ok(_) => stream.push(&block, &mut on_frame),
            Err(e) => {
                stream.finish(&mut on_frame);
                return Err(e);
            }
        }
    }
    if reader.frames_read() == 0 {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    stream.finish(&mut on_frame);
    Ok(info)
}
