//! Streaming resampling (rubato) from any input rate to the model rate, fed from an internal buffer so any block size works without allocation.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use crate::config::MAX_SAMPLE_RATE;
use crate::error::AudioError;

/// Largest reduced rate (`rate / gcd`) for which the synchronous FFT resampler is used;
/// beyond it an asynchronous sinc resampler is used.
const MAX_FFT_UNIT: usize = 2048;

/// A mono streaming resampler with its delay removed: the samples it emits start at input
/// time zero, so sample `k` of its output is at `k / to` seconds of the input timeline.
///
/// Internally a fixed-input-size rubato resampler (synchronous FFT for rational ratios with small
/// terms, else sinc) is fed from a preallocated buffer. [`StreamResampler::push`] allocates nothing.
pub struct StreamResampler {
    rs: Box<dyn Resampler<f32>>,
    from: u32,
    to: u32,
    inbuf: Vec<f32>,
    filled: usize,
    outbuf: Vec<f32>,
    delay: usize,
    to_skip: usize,
    total_in: u64,
    total_out: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz (both in 1000..=384000, and different).
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let err = |reason: String| AudioError::Resample { from, to, reason };
        for r in [from, to] {
            if !(crate::wav::MIN_WAV_RATE..=MAX_SAMPLE_RATE).contains(&r) {
                return Err(err(format!(
                    "rate {r} Hz outside {}..={MAX_SAMPLE_RATE} Hz",
                    crate::wav::MIN_WAV_RATE
                )));
            }
        }
        if from == to {
            return Err(err("rates are equal; no resampler needed".into()));
        }
        let g = gcd(from as usize, to as usize);
        // About 10 ms of input per chunk.
        let chunk = (from as usize / 100).max(64);
        let rs: Box<dyn Resampler<f32>> =
            if from as usize / g <= MAX_FFT_UNIT && to as usize / g <= MAX_FFT_UNIT {
                Box::new(
                    Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
                        .map_err(|e| err(e.to_string()))?,
                )
            } else {
                let params = SincInterpolationParameters::new(128, WindowFunction::Blackman2)
                    .oversampling_factor(256)
                    .interpolation(SincInterpolationType::Cubic);
                Box::new(
                    Async::<f32>::new_sinc(
                        to as f64 / from as f64,
                        1.0,
                        &params,
                        chunk,
                        1,
                        FixedAsync::Input,
                    )
                    .map_err(|e| err(e.to_string()))?,
                )
            };
        let delay = rs.output_delay();
        Ok(StreamResampler {
            inbuf: vec![0.0; rs.input_frames_max()],
            outbuf: vec![0.0; rs.output_frames_max()],
            filled: 0,
            delay,
            to_skip: delay,
            total_in: 0,
            total_out: 0,
            from,
            to,
            rs,
        })
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// The resampler's delay in output samples (dropped from the output, so timestamps are in
    /// the input timeline; it is extra latency, not a time shift).
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Pushes input samples; calls `sink` with each run of new output samples. Allocates nothing.
    pub fn push(&mut self, mut samples: &[f32], mut sink: impl FnMut(&[f32])) {
        while !samples.is_empty() {
            let need = self.rs.input_frames_next().min(self.inbuf.len());
            let n = (need - self.filled).min(samples.len());
            self.inbuf[self.filled..self.filled + n].copy_from_slice(&samples[..n]);
            self.filled += n;
            samples = &samples[n..];
            self.total_in += n as u64;
            if self.filled == need {
                self.run_chunk(need, &mut sink, usize::MAX);
            }
        }
    }

    /// Pushes enough silence to bring every sample pushed so far out of the resampler
    /// (the tail held back by its delay). Output past the input's end is trimmed, except
    /// that the last run may end with a few samples of the padding.
    pub fn flush(&mut self, mut sink: impl FnMut(&[f32])) {
        let wanted = (self.total_in as u128 * self.to as u128).div_ceil(self.from as u128) as u64
            + self.delay as u64;
        let mut guard = 0;
        while self.total_out < wanted && guard < 1_000_000 {
            guard += 1;
            let need = self.rs.input_frames_next().min(self.inbuf.len());
            self.inbuf[self.filled..need].fill(0.0);
            let limit = wanted - self.total_out;
            self.run_chunk(need, &mut sink, limit as usize);
        }
        self.filled = 0;
    }

    fn run_chunk(&mut self, need: usize, sink: &mut impl FnMut(&[f32]), limit: usize) {
        self.filled = 0;
        let Ok(input) = InterleavedSlice::new(&self.inbuf[..need], 1, need) else {
            return;
        };
        let cap = self.outbuf.len();
        let Ok(mut output) = InterleavedSlice::new_mut(&mut self.outbuf[..], 1, cap) else {
            return;
        };
        // Buffer sizes come from the resampler's own queries, so this cannot fail.
        let Ok((_, produced)) = self.rs.process_into_buffer(&input, &mut output, None) else {
            return;
        };
        let produced = produced.min(limit);
        self.total_out += produced as u64;
        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        if produced > skip {
            sink(&self.outbuf[skip..produced]);
        }
    }

    /// Back to the state right after `new`.
    pub fn reset(&mut self) {
        self.rs.reset();
        self.filled = 0;
        self.to_skip = self.delay;
        self.total_in = 0;
        self.total_out = 0;
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resamples a whole clip from `from` Hz to `to` Hz with the same streaming resampler the
/// [`crate::FeatureStream`] uses (delay removed, tail flushed): the output has
/// `ceil(len * to / from)` samples and sample `k` is at `k / to` seconds. Returns the input
/// unchanged when the rates are equal.
pub fn resample_clip(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut r = StreamResampler::new(from, to)?;
    let want = (samples.len() as u128 * to as u128).div_ceil(from as u128) as usize;
    let mut out = Vec::with_capacity(want);
    r.push(samples, |s| out.extend_from_slice(s));
    r.flush(|s| out.extend_from_slice(s));
    out.truncate(want);
    Ok(out)
}
