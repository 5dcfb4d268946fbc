//! sepstream-audio: WAV input, resampling, log-mel/MFCC features, microphone capture, keyword decisions.
//!
//! - [`read_wav`] / [`WavBlockReader`]: WAV files (hound) as mono f32, whole or block by block.
//! - [`FrontendConfig`]: the feature definition from a model spec's `[frontend]` table.
//! - [`FeatureExtractor`]: batch features of a clip at the model rate (training, tests).
//! - [`FeatureStream`]: any block sizes in, resampled (rubato) to the model rate, feature frames
//!   out with timestamps in the input timeline; no allocation per hop. [`stream_wav`] runs a
//!   file through it block by block; [`resample_clip`] resamples a whole clip the same way.
//! - [`DecisionConfig`] / [`KeywordDetector`]: posterior smoothing, threshold, refractory period.
//!
//! Feature definition, frame timing and the no-padding rule: see [`FrontendConfig`].

mod config;
mod decision;
mod error;
mod frontend;
mod resample;
mod stream;
mod wav;

pub use config::{DctScale, FrontendConfig, MelScale, Spectrum, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
pub use decision::{DecisionConfig, KeywordDetector, KeywordEvent, KeywordHit};
pub use error::AudioError;
pub use frontend::{hz_to_mel, mel_band_edges, mel_to_hz, FeatureExtractor};
pub use resample::{resample_clip, StreamResampler};
pub use stream::{stream_wav, FeatureStream};
pub use wav::{
    read_wav, WavBlockReader, WavFormat, WavInfo, DEFAULT_BLOCK, MAX_CHANNELS, MIN_WAV_RATE,
};
pub mod mic;
