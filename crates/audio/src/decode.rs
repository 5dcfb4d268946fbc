//! Audio input of any kind people have: WAV, FLAC, MP3 and Ogg/Vorbis from a file or a pipe, block by block as mono f32.
//!
//! WAV goes through [`WavBlockReader`] (it reads the streaming writers' headers that give no
//! length); everything else through symphonia (pure Rust). The format is told by the first bytes,
//! not the file name, so standard input works the same as a file.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;

use crate::config::MAX_SAMPLE_RATE;
use crate::error::AudioError;
use crate::wav::{read_full, Ending, WavBlockReader, DEFAULT_BLOCK, MAX_CHANNELS, MIN_WAV_RATE};

/// The name [`AudioReader::stdin`] gives standard input in messages.
pub const STDIN_NAME: &str = "-";

/// What an opened audio stream is.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioInfo {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels (downmixed to mono by the reader).
    pub channels: u16,
    /// The container and codec, e.g. `wav (16-bit int)`, `flac`, `mp3`, `ogg/vorbis`.
    pub codec: String,
    /// Frames (samples per channel) the stream announces, when it does.
    pub frames: Option<u64>,
}

impl AudioInfo {
    /// Announced duration in seconds, when known.
    pub fn duration(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / f64::from(self.sample_rate))
    }
}

/// Counts the bytes the decoder has pulled from the source (for byte offsets in errors).
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Compressed {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    interleaved: Vec<f32>,
    bytes_read: Arc<AtomicU64>,
    /// Decoded mono frames not yet returned (a packet can be larger than a block).
    carry: Vec<f32>,
    /// Where the next packet should start (the last packet's timestamp plus its duration) and
    /// that duration: a start later by a whole packet or more means the demuxer skipped damaged
    /// data to find its way again. (Vorbis packets overlap by up to 1024 frames, hence the
    /// floor.)
    next_pts: Option<(i64, i64)>,
}

enum Inner {
    Wav(Box<WavBlockReader>),
    Compressed(Box<Compressed>),
}

/// Reads WAV, FLAC, MP3 or Ogg/Vorbis block by block as mono f32 in [-1, 1] (channels averaged),
/// from a file or any byte stream, without holding more than a block (and one compressed packet).
///
/// Damage part of the way in never loses what came before it: [`AudioReader::read_block`] first
/// returns every frame decoded before the damage, and the call after that the error
/// ([`AudioError::Truncated`] or [`AudioError::Damaged`], with the byte offset).
pub struct AudioReader {
    path: PathBuf,
    inner: Inner,
    info: AudioInfo,
    frames_read: u64,
    block: usize,
    ending: Ending,
}

/// Whether the first bytes are a RIFF/WAVE header.
fn is_riff_wave(head: &[u8]) -> bool {
    head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE"
}

/// Why a symphonia call failed.
struct Failure {
    /// The stream ended in the middle of something (a cut file).
    ended_early: bool,
    reason: String,
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.reason
    }
}

/// Runs a symphonia call, turning a panic inside the decoder into an error (a damaged stream
/// must not bring the program down).
fn guarded<T>(f: impl FnOnce() -> Result<T, SymError>) -> Result<T, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(SymError::IoError(io))) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(Failure {
                ended_early: true,
                reason: "the stream ends in the middle of a packet".into(),
            })
        }
        Ok(Err(e)) => Err(Failure {
            ended_early: false,
            reason: e.to_string(),
        }),
        Err(_) => Err(Failure {
            ended_early: false,
            reason: "the decoder failed on malformed data".into(),
        }),
    }
}

impl AudioReader {
    /// Opens the file at `path` (`-` is standard input) and reads its header. Reads no samples.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        if path.as_os_str() == STDIN_NAME {
            return Self::stdin();
        }
        let file = std::fs::File::open(path).map_err(|e| AudioError::Io {
            path: path.to_path_buf(),
            error: e,
        })?;
        Self::from_reader(path, Box::new(file))
    }

    /// Standard input, named `-` in messages.
    pub fn stdin() -> Result<Self, AudioError> {
        Self::from_reader(Path::new(STDIN_NAME), Box::new(std::io::stdin()))
    }

    /// Any byte stream; `name` is used in messages and its extension (if any) as a format hint.
    pub fn from_reader(
        name: &Path,
        mut reader: Box<dyn Read + Send + Sync>,
    ) -> Result<Self, AudioError> {
        let io_err = |e| AudioError::Io {
            path: name.to_path_buf(),
            error: e,
        };
        let mut head = [0u8; 12];
        let got = read_full(&mut reader, &mut head).map_err(io_err)?;
        let rejoined: Box<dyn Read + Send + Sync> =
            Box::new(Cursor::new(head[..got].to_vec()).chain(reader));
        if got < 4 || &head[0..4] == b"RIFF" {
            // Too short to be anything else, or RIFF: the WAV reader gives the precise reason.
            if got >= 12 && !is_riff_wave(&head) {
                return Err(AudioError::NotAudio {
                    path: name.to_path_buf(),
                    reason: "a RIFF file that is not WAVE".into(),
                });
            }
            let wav = WavBlockReader::from_reader(name, rejoined)?;
            let w = wav.info();
            let codec = match w.format {
                crate::WavFormat::Int(b) => format!("wav ({b}-bit int)"),
                crate::WavFormat::Float32 => "wav (32-bit float)".into(),
            };
            return Ok(Self::new(
                name,
                Inner::Wav(Box::new(wav)),
                AudioInfo {
                    sample_rate: w.sample_rate,
                    channels: w.channels,
                    codec,
                    frames: w.frames,
                },
            ));
        }
        Self::open_compressed(name, rejoined)
    }

    fn new(name: &Path, inner: Inner, info: AudioInfo) -> Self {
        AudioReader {
            path: name.to_path_buf(),
            inner,
            info,
            frames_read: 0,
            block: DEFAULT_BLOCK,
            ending: Ending::default(),
        }
    }

    fn open_compressed(
        name: &Path,
        reader: Box<dyn Read + Send + Sync>,
    ) -> Result<Self, AudioError> {
        let not_audio = |reason: String| AudioError::NotAudio {
            path: name.to_path_buf(),
            reason,
        };
        let bytes_read = Arc::new(AtomicU64::new(0));
        let counting = CountingReader {
            inner: reader,
            count: bytes_read.clone(),
        };
        let mss =
            MediaSourceStream::new(Box::new(ReadOnlySource::new(counting)), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = name.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = guarded(|| {
            symphonia::default::get_probe().probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
        })
        .map_err(|f| not_audio(f.into()))?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| not_audio("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| not_audio("the audio track has no codec parameters".into()))?
            .clone();
        let track_id = track.id;
        let frames = track.num_frames;
        let decoder = guarded(|| {
            symphonia::default::get_codecs()
                .make_audio_decoder(&params, &AudioDecoderOptions::default())
        })
        .map_err(|e| AudioError::Unsupported {
            path: name.to_path_buf(),
            reason: e.into(),
        })?;
        let sample_rate = params
            .sample_rate
            .ok_or_else(|| not_audio("the stream does not say its sample rate".into()))?;
        if !(MIN_WAV_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(AudioError::BadSampleRate {
                path: name.to_path_buf(),
                rate: sample_rate,
                min: MIN_WAV_RATE,
                max: MAX_SAMPLE_RATE,
            });
        }
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        if channels > usize::from(MAX_CHANNELS) {
            return Err(AudioError::Unsupported {
                path: name.to_path_buf(),
                reason: format!("{channels} channels, expected 1..={MAX_CHANNELS}"),
            });
        }
        let container = format.format_info().short_name.to_string();
        let codec_name = decoder.codec_info().short_name.to_string();
        let codec = if container == codec_name {
            container
        } else {
            format!("{container}/{codec_name}")
        };
        Ok(Self::new(
            name,
            Inner::Compressed(Box::new(Compressed {
                format,
                decoder,
                track_id,
                interleaved: Vec::new(),
                bytes_read,
                carry: Vec::new(),
                next_pts: None,
            })),
            AudioInfo {
                sample_rate,
                channels: channels as u16,
                codec,
                frames,
            },
        ))
    }

    /// What the stream is.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The file's path, `-` for standard input, or the name given to [`AudioReader::from_reader`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Mono frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Seconds of audio returned so far.
    pub fn seconds_read(&self) -> f64 {
        self.frames_read as f64 / f64::from(self.info.sample_rate)
    }

    /// Sets the block size in frames used by [`AudioReader::read_block`] (at least 1).
    pub fn set_block_frames(&mut self, frames: usize) {
        self.block = frames.max(1);
        if let Inner::Wav(w) = &mut self.inner {
            w.set_block_frames(frames);
        }
    }

    /// Replaces `out` with the next block of up to `block` mono frames; returns how many (0 at
    /// the end). After damage, the frames before it come first and the error on the next call.
    pub fn read_block(&mut self, out: &mut Vec<f32>) -> Result<usize, AudioError> {
        out.clear();
        if let Some(r) = self.ending.before_read() {
            return r;
        }
        let got = match &mut self.inner {
            Inner::Wav(w) => w.read_block(out).inspect_err(|_| self.ending.done = true)?,
            Inner::Compressed(c) => {
                let (n, mut error) = c.read_block(&self.path, self.block, out);
                // Damaged data can decode to anything.
                for v in out.iter_mut() {
                    *v = crate::wav::as_played(*v);
                }
                let announced = self.info.frames.unwrap_or(0);
                let total = self.frames_read + n as u64;
                if n == 0 && error.is_none() && total < announced {
                    error = Some(AudioError::Truncated {
                        path: self.path.clone(),
                        offset: c.bytes_read.load(Ordering::Relaxed),
                        reason: format!(
                            "the stream announces {announced} frames, it ends after {total}"
                        ),
                    });
                }
                match error {
                    // Nothing before the damage in this block: the error now.
                    Some(e) if n == 0 => {
                        self.ending.done = true;
                        return Err(e);
                    }
                    // The frames before the damage now, the error on the next call.
                    Some(e) => self.ending.pending = Some(e),
                    None => {}
                }
                n
            }
        };
        if got == 0 {
            self.ending.done = true;
        }
        self.frames_read += got as u64;
        Ok(got)
    }
}

impl Compressed {
    /// Fills `out` with up to `block` frames; the error, if the stream broke, comes beside the
    /// frames decoded before it.
    fn read_block(
        &mut self,
        path: &Path,
        block: usize,
        out: &mut Vec<f32>,
    ) -> (usize, Option<AudioError>) {
        loop {
            if !self.carry.is_empty() {
                let n = self.carry.len().min(block - out.len());
                out.extend_from_slice(&self.carry[..n]);
                self.carry.drain(..n);
            }
            if out.len() >= block {
                return (out.len(), None);
            }
            let damaged = |c: &Self, f: Failure| {
                let offset = c.bytes_read.load(Ordering::Relaxed);
                let path = path.to_path_buf();
                if f.ended_early {
                    AudioError::Truncated {
                        path,
                        offset,
                        reason: f.reason,
                    }
                } else {
                    AudioError::Damaged {
                        path,
                        offset,
                        reason: f.reason,
                    }
                }
            };
            let packet = match guarded(|| self.format.next_packet()) {
                Ok(Some(p)) => p,
                Ok(None) => return (out.len(), None),
                Err(reason) => return (out.len(), Some(damaged(self, reason))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let pts = packet.pts.get();
            if let Some((expected, last_dur)) = self.next_pts {
                if pts - expected >= last_dur.max(1024) {
                    let reason = format!(
                        "{} frames are missing: the decoder skipped damaged data",
                        pts - expected
                    );
                    let offset = self.bytes_read.load(Ordering::Relaxed);
                    return (
                        out.len(),
                        Some(AudioError::Damaged {
                            path: path.to_path_buf(),
                            offset,
                            reason,
                        }),
                    );
                }
            }
            let dur = packet.dur.get() as i64;
            self.next_pts = Some((pts.saturating_add(dur), dur));
            let decoder = &mut self.decoder;
            let interleaved = &mut self.interleaved;
            let decoded = guarded(|| {
                let buf = decoder.decode(&packet)?;
                buf.copy_to_vec_interleaved::<f32>(interleaved);
                Ok(buf.spec().channels().count())
            });
            let channels = match decoded {
                Ok(c) => c.max(1),
                Err(reason) => return (out.len(), Some(damaged(self, reason))),
            };
            let inv = 1.0 / channels as f32;
            self.carry.extend(
                self.interleaved
                    .chunks_exact(channels)
                    .map(|f| f.iter().sum::<f32>() * inv),
            );
        }
    }
}

/// Reads a whole audio file (any format [`AudioReader`] reads; `-` is standard input) as mono
/// f32 in [-1, 1] and its sample rate.
///
/// Memory grows with what is really in the file, never with what a header claims. Errors name
/// the file: not audio, unsupported format, bad rate, truncated, damaged, zero samples.
pub fn read_audio(path: &Path) -> Result<(Vec<f32>, u32), AudioError> {
    let mut r = AudioReader::open(path)?;
    let rate = r.info().sample_rate;
    let mut all = Vec::new();
    let mut block = Vec::new();
    while r.read_block(&mut block)? > 0 {
        all.extend_from_slice(&block);
    }
    if all.is_empty() {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((all, rate))
}
