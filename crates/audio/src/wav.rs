//! Streaming WAV input (hound): blocks of mono f32 without holding the file, and `read_wav` built on it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::config::MAX_SAMPLE_RATE;
use crate::error::AudioError;

/// Lowest WAV sample rate accepted.
pub const MIN_WAV_RATE: u32 = 1000;
/// Most channels accepted.
pub const MAX_CHANNELS: u16 = 32;
/// Frames per block [`WavBlockReader::read_block`] returns by default.
pub const DEFAULT_BLOCK: usize = 4096;

/// Sample encodings this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavFormat {
    /// Signed (8-bit: unsigned) integer PCM of this many bits: 8, 16, 24 or 32.
    Int(u16),
    /// 32-bit IEEE float.
    Float32,
}

/// What the header of an opened WAV file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels (downmixed to mono by the reader).
    pub channels: u16,
    /// Sample encoding.
    pub format: WavFormat,
    /// Frames (samples per channel) the header announces.
    pub frames: u64,
}

impl WavInfo {
    /// Duration the header announces, in seconds.
    pub fn duration(&self) -> f64 {
        self.frames as f64 / self.sample_rate as f64
    }
}

/// Reads a WAV file block by block as mono f32 in [-1, 1] (channels averaged).
///
/// Only one block is in memory at a time. The header is checked before any sample is read:
/// channels 1..=32, rate 1000..=384000 Hz, 8/16/24/32-bit integer or 32-bit float.
pub struct WavBlockReader {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
    info: WavInfo,
    scale: f32,
    frames_read: u64,
    block: usize,
}

/// hound reports a short read as `UnexpectedEof` or as a custom "Failed to read enough bytes." error.
fn is_eof(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string().contains("enough bytes")
}

fn hound_err(path: &Path, e: hound::Error) -> AudioError {
    let path = path.to_path_buf();
    match e {
        hound::Error::IoError(source) => {
            if is_eof(&source) {
                AudioError::NotWav {
                    path,
                    reason: "file ends inside the header".into(),
                }
            } else {
                AudioError::Io {
                    path,
                    error: source,
                }
            }
        }
        hound::Error::FormatError(m)
            if m.contains("bits per sample") || m.contains("sample bits") =>
        {
            AudioError::Unsupported {
                path,
                reason: m.to_string(),
            }
        }
        hound::Error::FormatError(m) => AudioError::NotWav {
            path,
            reason: m.to_string(),
        },
        hound::Error::Unsupported => AudioError::Unsupported {
            path,
            reason: "format tag not supported (only integer PCM and 32-bit float)".into(),
        },
        other => AudioError::NotWav {
            path,
            reason: other.to_string(),
        },
    }
}

impl WavBlockReader {
    /// Opens `path` and validates its header. Reads no samples.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(|source| AudioError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| hound_err(path, e))?;
        let spec = reader.spec();
        let unsupported = |reason: String| AudioError::Unsupported {
            path: path.to_path_buf(),
            reason,
        };
        if spec.channels == 0 || spec.channels > MAX_CHANNELS {
            return Err(unsupported(format!(
                "{} channels, expected 1..={MAX_CHANNELS}",
                spec.channels
            )));
        }
        if !(MIN_WAV_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
            return Err(AudioError::BadSampleRate {
                path: path.to_path_buf(),
                rate: spec.sample_rate,
                min: MIN_WAV_RATE,
                max: MAX_SAMPLE_RATE,
            });
        }
        let format = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, b @ (8 | 16 | 24 | 32)) => WavFormat::Int(b),
            (hound::SampleFormat::Float, 32) => WavFormat::Float32,
            (f, b) => {
                return Err(unsupported(format!(
                    "{b}-bit {f:?} samples (supported: 8/16/24/32-bit int, 32-bit float)"
                )))
            }
        };
        let scale = match format {
            WavFormat::Int(b) => 1.0 / (1u64 << (b - 1)) as f32,
            WavFormat::Float32 => 1.0,
        };
        let info = WavInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            format,
            frames: reader.duration() as u64,
        };
        Ok(WavBlockReader {
            path: path.to_path_buf(),
            reader,
            info,
            scale,
            frames_read: 0,
            block: DEFAULT_BLOCK,
        })
    }

    /// The header's facts.
    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Sets the block size in frames used by [`WavBlockReader::read_block`] (at least 1).
    pub fn set_block_frames(&mut self, frames: usize) {
        self.block = frames.max(1);
    }

    /// Replaces `out` with the next block of up to `block` mono frames; returns how many
    /// (0 at the end). A file shorter than its header says gives [`AudioError::Truncated`].
    pub fn read_block(&mut self, out: &mut Vec<f32>) -> Result<usize, AudioError> {
        out.clear();
        let ch = self.info.channels as usize;
        let left = self.info.frames - self.frames_read;
        let want = (self.block as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        out.reserve(want);
        let inv_ch = 1.0 / ch as f32;
        let scale = self.scale;
        let mut acc = 0.0f32;
        let mut k = 0usize;
        macro_rules! drain {
            ($ty:ty, $conv:expr) => {
                for s in self.reader.samples::<$ty>().take(want * ch) {
                    let v: $ty = match s {
                        Ok(v) => v,
                        Err(hound::Error::IoError(e)) if is_eof(&e) => {
                            let got = self.frames_read + out.len() as u64;
                            return Err(AudioError::Truncated {
                                path: self.path.clone(),
                                reason: format!(
                                    "header announces {} frames, data ends after about {got}",
                                    self.info.frames
                                ),
                            });
                        }
                        Err(e) => return Err(hound_err(&self.path, e)),
                    };
                    acc += $conv(v);
                    k += 1;
                    if k == ch {
                        out.push(if ch == 1 { acc } else { acc * inv_ch });
                        acc = 0.0;
                        k = 0;
                    }
                }
            };
        }
        match self.info.format {
            WavFormat::Int(_) => drain!(i32, |v: i32| v as f32 * scale),
            WavFormat::Float32 => drain!(f32, |v: f32| v),
        }
        if out.len() < want {
            return Err(AudioError::Truncated {
                path: self.path.clone(),
                reason: format!(
                    "header announces {} frames, data ends after {}",
                    self.info.frames,
                    self.frames_read + out.len() as u64
                ),
            });
        }
        self.frames_read += out.len() as u64;
        Ok(out.len())
    }
}

/// Reads a whole WAV file as mono f32 in [-1, 1] and its sample rate.
///
/// Built on [`WavBlockReader`]; memory is reserved from the file's real size, never from what
/// the header claims. Errors name the file: not a WAV, unsupported format, bad rate, truncated,
/// zero samples.
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32), AudioError> {
    let mut r = WavBlockReader::open(path)?;
    let info = r.info();
    if info.frames == 0 {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    let bytes_per_frame = info.channels as u64
        * match info.format {
            WavFormat::Int(b) => b.div_ceil(8) as u64,
            WavFormat::Float32 => 4,
        };
    let file_len = std::fs::metadata(path)
        .map_err(|source| AudioError::Io {
            path: path.to_path_buf(),
            error: source,
        })?
        .len();
    let cap = info.frames.min(file_len / bytes_per_frame.max(1));
    let mut all = Vec::with_capacity(cap as usize);
    let mut block = Vec::new();
    while r.read_block(&mut block)? > 0 {
        all.extend_from_slice(&block);
    }
    Ok((all, info.sample_rate))
}
