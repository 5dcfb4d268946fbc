//! sepstream-audio: WAV input, resampling, log-mel/MFCC features, microphone capture, keyword decisions.
//!
//! - [`AudioReader`] / [`read_audio`]: WAV, FLAC, MP3 and Ogg/Vorbis from a file or standard
//!   input as mono f32, block by block or whole; damage part of the way in returns what came
//!   before it first. [`WavBlockReader`]: WAV from any byte stream, including the headers with
//!   no length that streaming writers leave.
//! - [`FrontendConfig`]: the feature definition from a model spec's `[frontend]` table.
//! - [`FeatureExtractor`]: batch features of a clip at the model rate (training, tests).
//! - [`FeatureStream`]: any block sizes in, resampled (rubato) to the model rate, feature frames
//!   out with timestamps in the input timeline; no allocation per hop. [`stream_audio`] runs a
//!   file through it block by block; [`resample_clip`] resamples a whole clip the same way.
//! - [`DecisionConfig`] / [`KeywordDetector`]: posterior smoothing, threshold, refractory period.
//!
//! Feature definition, frame timing and the no-padding rule: see [`FrontendConfig`].

mod config;
mod decision;
mod decode;
mod error;
mod frontend;
mod resample;
mod stream;
mod wav;

pub use config::{DctScale, FrontendConfig, MelScale, Spectrum, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
pub use decision::{ConfirmConfig, DecisionConfig, KeywordDetector, KeywordEvent, KeywordHit};
pub use decode::{read_audio, AudioInfo, AudioReader, STDIN_NAME};
pub use error::AudioError;
pub use frontend::{hz_to_mel, mel_band_edges, mel_to_hz, FeatureExtractor};
pub use resample::{resample_clip, StreamResampler};
pub use stream::{stream_audio, FeatureStream};
pub use wav::{
    is_placeholder_length, WavBlockReader, WavFormat, WavInfo, DEFAULT_BLOCK, MAX_CHANNELS,
    MIN_WAV_RATE,
};
pub mod mic;
