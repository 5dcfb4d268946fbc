//! Streaming WAV input: the RIFF header walked from any byte stream (file or pipe), PCM blocks as mono f32.
//!
//! The reader walks the chunks itself instead of asking a decoding library because the WAV files
//! people pipe are the ones libraries refuse: `arecord`, `sox` and `ffmpeg` writing to a pipe
//! cannot go back to fill in the data length, so they leave 0, `0xFFFFFFFF` or a large
//! placeholder (`0x7FFFF000`) there. Such a length means "read to the end" here. A file whose
//! header gives a real length and ends before it is truncated: the frames before the cut are
//! returned first, then [`AudioError::Truncated`] with the byte offset of the cut.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::config::MAX_SAMPLE_RATE;
use crate::error::AudioError;

/// Lowest WAV sample rate accepted.
pub const MIN_WAV_RATE: u32 = 1000;
/// Most channels accepted.
pub const MAX_CHANNELS: u16 = 32;
/// Frames per block [`WavBlockReader::read_block`] returns by default.
pub const DEFAULT_BLOCK: usize = 4096;
/// Largest `fmt ` chunk accepted (the extensible form is 40 bytes).
const MAX_FMT_CHUNK: u32 = 1024;

/// Sample encodings this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavFormat {
    /// Signed (8-bit: unsigned) integer PCM of this many bits: 8, 16, 24 or 32.
    Int(u16),
    /// 32-bit IEEE float.
    Float32,
}

impl WavFormat {
    fn bytes(self) -> usize {
        match self {
            WavFormat::Int(b) => usize::from(b / 8),
            WavFormat::Float32 => 4,
        }
    }
}

/// What the header of an opened WAV stream says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels (downmixed to mono by the reader).
    pub channels: u16,
    /// Sample encoding.
    pub format: WavFormat,
    /// Frames (samples per channel) the header announces; `None` when it gives no length
    /// (0, `0xFFFFFFFF` or a streaming writer's placeholder): the stream is read to its end.
    pub frames: Option<u64>,
    /// Byte offset of the first sample in the stream.
    pub data_offset: u64,
}

impl WavInfo {
    /// Duration the header announces, in seconds (`None` for a stream of unknown length).
    pub fn duration(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / f64::from(self.sample_rate))
    }
}

/// How a block reader ends: an error met after the last frames were returned waits here for
/// the next call, and after it (or the end) every call returns 0.
#[derive(Default)]
pub(crate) struct Ending {
    pub(crate) pending: Option<AudioError>,
    pub(crate) done: bool,
}

impl Ending {
    /// What a read returns before reading: the pending error, or 0 after the end; `None` to
    /// go on reading.
    pub(crate) fn before_read(&mut self) -> Option<Result<usize, AudioError>> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Some(Err(e));
        }
        self.done.then_some(Ok(0))
    }
}

/// Whether a data-chunk length is a placeholder left by a writer that could not seek back:
/// 0 (`arecord` to a pipe, crashed recorders), `0xFFFFFFFF` (`ffmpeg`), or the
/// `0x7FFF0000..=0x7FFFFFFF` range (`sox` writes `0x7FFFF000`, `arecord` `0x7FFFFFFF` rounded).
pub fn is_placeholder_length(len: u32) -> bool {
    len == 0 || len == u32::MAX || (0x7FFF_0000..=0x7FFF_FFFF).contains(&len)
}

/// Reads WAV from any byte stream block by block as mono f32 in [-1, 1] (channels averaged).
///
/// Only one block is in memory at a time. The header is checked before any sample is read:
/// channels 1..=32, rate 1000..=384000 Hz, 8/16/24/32-bit integer or 32-bit float PCM (plain or
/// `WAVE_FORMAT_EXTENSIBLE`).
pub struct WavBlockReader {
    path: PathBuf,
    source: BufReader<Box<dyn Read + Send>>,
    info: WavInfo,
    block_align: usize,
    /// Bytes of sample data consumed so far.
    data_read: u64,
    frames_read: u64,
    block: usize,
    bytes: Vec<u8>,
    ending: Ending,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

struct HeaderWalk<'a> {
    path: &'a Path,
    source: &'a mut BufReader<Box<dyn Read + Send>>,
    pos: u64,
}

impl HeaderWalk<'_> {
    fn not_wav(&self, reason: impl Into<String>) -> AudioError {
        AudioError::NotWav {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), AudioError> {
        let got = read_full(self.source, buf).map_err(|e| AudioError::Io {
            path: self.path.to_path_buf(),
            error: e,
        })?;
        self.pos += got as u64;
        if got < buf.len() {
            return Err(self.not_wav(format!(
                "file ends inside the header (at byte {})",
                self.pos
            )));
        }
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), AudioError> {
        let copied = std::io::copy(&mut self.source.by_ref().take(n), &mut std::io::sink())
            .map_err(|e| AudioError::Io {
                path: self.path.to_path_buf(),
                error: e,
            })?;
        self.pos += copied;
        if copied < n {
            return Err(self.not_wav(format!(
                "file ends inside a chunk before the data (at byte {})",
                self.pos
            )));
        }
        Ok(())
    }
}

impl WavBlockReader {
    /// Opens the file at `path` and validates its header. Reads no samples.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(|e| AudioError::Io {
            path: path.to_path_buf(),
            error: e,
        })?;
        Self::from_reader(path, Box::new(file))
    }

    /// Reads WAV from any byte stream (a pipe, standard input); `name` is used in errors.
    pub fn from_reader(name: &Path, reader: Box<dyn Read + Send>) -> Result<Self, AudioError> {
        let mut source = BufReader::with_capacity(64 * 1024, reader);
        let mut walk = HeaderWalk {
            path: name,
            source: &mut source,
            pos: 0,
        };
        let mut riff = [0u8; 12];
        let got = read_full(walk.source, &mut riff).map_err(|e| AudioError::Io {
            path: name.to_path_buf(),
            error: e,
        })?;
        walk.pos = got as u64;
        if got < 12 {
            return Err(walk.not_wav(if got == 0 {
                "the file is empty".to_string()
            } else {
                format!("file ends inside the header (at byte {got})")
            }));
        }
        if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
            return Err(walk.not_wav("no RIFF/WAVE header"));
        }
        let mut fmt: Option<Vec<u8>> = None;
        let data_len = loop {
            let mut head = [0u8; 8];
            walk.exact(&mut head)?;
            let len = u32_at(&head, 4);
            match &head[0..4] {
                b"fmt " => {
                    if !(16..=MAX_FMT_CHUNK).contains(&len) {
                        return Err(walk.not_wav(format!(
                            "fmt chunk of {len} bytes (expected 16..={MAX_FMT_CHUNK})"
                        )));
                    }
                    let mut body = vec![0u8; len as usize + (len as usize & 1)];
                    walk.exact(&mut body)?;
                    fmt = Some(body);
                }
                b"data" => break len,
                _ => walk.skip(u64::from(len) + u64::from(len & 1))?,
            }
        };
        let Some(fmt) = fmt else {
            return Err(walk.not_wav("data chunk before any fmt chunk"));
        };
        let data_offset = walk.pos;
        let unsupported = |reason: String| AudioError::Unsupported {
            path: name.to_path_buf(),
            reason,
        };
        let mut tag = u16_at(&fmt, 0);
        let channels = u16_at(&fmt, 2);
        let sample_rate = u32_at(&fmt, 4);
        let block_align = u16_at(&fmt, 12);
        let bits = u16_at(&fmt, 14);
        if tag == 0xFFFE {
            if fmt.len() < 40 {
                return Err(walk.not_wav("extensible fmt chunk shorter than 40 bytes"));
            }
            tag = u16_at(&fmt, 24);
        }
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(unsupported(format!(
                "{channels} channels, expected 1..={MAX_CHANNELS}"
            )));
        }
        if !(MIN_WAV_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(AudioError::BadSampleRate {
                path: name.to_path_buf(),
                rate: sample_rate,
                min: MIN_WAV_RATE,
                max: MAX_SAMPLE_RATE,
            });
        }
        let format = match (tag, bits) {
            (1, b @ (8 | 16 | 24 | 32)) => WavFormat::Int(b),
            (3, 32) => WavFormat::Float32,
            (1 | 3, b) => {
                return Err(unsupported(format!(
                    "{b}-bit {} samples (supported: 8/16/24/32-bit int, 32-bit float)",
                    if tag == 1 { "integer" } else { "float" }
                )))
            }
            (t, _) => {
                return Err(unsupported(format!(
                    "format tag {t:#06x} (supported: integer PCM and 32-bit float)"
                )))
            }
        };
        let frame_bytes = usize::from(channels) * format.bytes();
        if usize::from(block_align) != frame_bytes {
            return Err(walk.not_wav(format!(
                "block align {block_align} does not match {channels} channels of {bits}-bit samples ({frame_bytes})"
            )));
        }
        let frames = (!is_placeholder_length(data_len)).then(|| {
            // A length that is not a whole number of frames: the partial frame is not audio.
            u64::from(data_len) / frame_bytes as u64
        });
        Ok(WavBlockReader {
            path: name.to_path_buf(),
            source,
            info: WavInfo {
                sample_rate,
                channels,
                format,
                frames,
                data_offset,
            },
            block_align: frame_bytes,
            data_read: 0,
            frames_read: 0,
            block: DEFAULT_BLOCK,
            bytes: Vec::new(),
            ending: Ending::default(),
        })
    }

    /// The header's facts.
    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// The file's path (or the name given to [`WavBlockReader::from_reader`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Byte offset in the stream just after the last sample returned.
    pub fn byte_offset(&self) -> u64 {
        self.info.data_offset + self.data_read
    }

    /// Sets the block size in frames used by [`WavBlockReader::read_block`] (at least 1).
    pub fn set_block_frames(&mut self, frames: usize) {
        self.block = frames.max(1);
    }

    /// Replaces `out` with the next block of up to `block` mono frames; returns how many
    /// (0 at the end).
    ///
    /// A stream that ends before the length its header gives yields its last whole frames
    /// first; the call after that returns [`AudioError::Truncated`] with the byte offset of the
    /// cut. A stream of unknown length ends at its last whole frame.
    pub fn read_block(&mut self, out: &mut Vec<f32>) -> Result<usize, AudioError> {
        out.clear();
        if let Some(r) = self.ending.before_read() {
            return r;
        }
        let want = match self.info.frames {
            Some(total) => (self.block as u64).min(total - self.frames_read) as usize,
            None => self.block,
        };
        if want == 0 {
            self.ending.done = true;
            return Ok(0);
        }
        let want_bytes = want * self.block_align;
        self.bytes.resize(want_bytes, 0);
        let got = read_full(&mut self.source, &mut self.bytes).map_err(|e| AudioError::Io {
            path: self.path.clone(),
            error: e,
        })?;
        let frames = got / self.block_align;
        self.decode_into(frames, out);
        self.data_read += (frames * self.block_align) as u64;
        self.frames_read += frames as u64;
        if got < want_bytes {
            self.ending.done = self.info.frames.is_none();
            if let Some(total) = self.info.frames {
                self.ending.pending = Some(AudioError::Truncated {
                    path: self.path.clone(),
                    offset: self.info.data_offset
                        + self.data_read
                        + (got % self.block_align) as u64,
                    reason: format!(
                        "the header announces {total} frames, the data ends after {}",
                        self.frames_read
                    ),
                });
                if frames == 0 {
                    self.ending.done = true;
                    return Err(self.ending.pending.take().expect("just set"));
                }
            }
        }
        Ok(frames)
    }

    fn decode_into(&self, frames: usize, out: &mut Vec<f32>) {
        let ch = usize::from(self.info.channels);
        let inv_ch = 1.0 / ch as f32;
        out.reserve(frames);
        let bytes = &self.bytes[..frames * self.block_align];
        macro_rules! mono {
            ($size:expr, $conv:expr) => {
                for frame in bytes.chunks_exact($size * ch) {
                    let sum: f32 = frame.chunks_exact($size).map($conv).sum();
                    out.push(if ch == 1 { sum } else { sum * inv_ch });
                }
            };
        }
        match self.info.format {
            WavFormat::Int(8) => mono!(1, |b: &[u8]| (f32::from(b[0]) - 128.0) / 128.0),
            WavFormat::Int(16) => mono!(2, |b: &[u8]| f32::from(i16::from_le_bytes([b[0], b[1]]))
                / 32768.0),
            WavFormat::Int(24) => mono!(3, |b: &[u8]| {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
            }),
            WavFormat::Int(_) => mono!(4, |b: &[u8]| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
            }),
            WavFormat::Float32 => mono!(4, |b: &[u8]| as_played(f32::from_le_bytes([
                b[0], b[1], b[2], b[3]
            ]))),
        }
    }
}

/// A float sample as a sound card plays it: beyond full scale clips, and NaN (no sound at all) is
/// silence, so that one bad value cannot poison a stream's state. Integer samples need no such
/// care; float WAV data and every compressed decoder's output go through this.
pub(crate) fn as_played(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-1.0, 1.0)
    }
}
