//! Typed errors of sepstream-audio: every audio file error names the file and the reason.

use std::path::PathBuf;

/// Everything that can go wrong in sepstream-audio.
///
/// Errors about a file carry its path; `Display` reads "`<path>`: `<reason>`".
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or read (permissions, missing file, I/O failure).
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error (in the message, not a `source()`: a printed error chain
        /// says it once).
        error: std::io::Error,
    },
    /// The bytes are not a RIFF/WAVE file, or its header is malformed.
    #[error("{path}: not a valid WAV file: {reason}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A well-formed WAV file in a format this crate does not read
    /// (e.g. 64-bit float, 4-bit ADPCM, too many channels).
    #[error("{path}: unsupported WAV format: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// The sample rate in the header is 0 or outside 1000..=384000 Hz.
    #[error("{path}: bad sample rate {rate} Hz (supported: {min}..={max} Hz)")]
    BadSampleRate {
        /// The file.
        path: PathBuf,
        /// The rate the header claims.
        rate: u32,
        /// Lowest supported rate.
        min: u32,
        /// Highest supported rate.
        max: u32,
    },
    /// The file ends before the data its header announces (a cut or lying file). Readers
    /// return every whole frame before the cut first.
    #[error("{path}: truncated at byte {offset}: {reason}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Byte offset in the file where the data ends.
        offset: u64,
        /// Details (how many frames were read).
        reason: String,
    },
    /// A compressed stream (FLAC, MP3, Ogg/Vorbis) is damaged part of the way in. Readers
    /// return every frame decoded before the damage first.
    #[error("{path}: damaged at about byte {offset}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Byte offset in the file near the damage (the decoder reads ahead, so the damage lies
        /// at or before it).
        offset: u64,
        /// What the decoder said.
        reason: String,
    },
    /// Not a WAV, FLAC, MP3 or Ogg/Vorbis stream this crate can decode.
    #[error("{path}: not a readable audio file (WAV, FLAC, MP3, Ogg/Vorbis): {reason}")]
    NotAudio {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The file holds no audio samples at all.
    #[error("{path}: contains zero samples")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A front-end, resampler or decision configuration is invalid.
    #[error("invalid {what} config: {reason}")]
    Config {
        /// Which configuration (`frontend`, `decision`, `resampler`).
        what: &'static str,
        /// What is wrong, with the expected and actual values.
        reason: String,
    },
    /// A stream was asked for a sample rate it cannot resample from.
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    Resample {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// Why.
        reason: String,
    },
}

impl AudioError {
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        AudioError::Config {
            what,
            reason: reason.into(),
        }
    }
}
