//! Messages of pipeline edges that cross processes: audio blocks as little-endian binary, keyword
//! events as JSON, each with its stream id, sequence number and capture time; and the receiver's
//! bookkeeping of gaps, reorderings and late arrivals.
//!
//! Audio block layout (all little-endian), 40-byte header then the samples:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `SSA1` |
//! | 4..12 | stream id (u64: a new one each time a sender starts) |
//! | 12..20 | sequence number (u64, from 0 per stream) |
//! | 20..28 | capture time (f64, Unix seconds: when the capture stage took the block) |
//! | 28..36 | index of the block's first sample since capture began (u64) |
//! | 36..40 | sample rate (u32, Hz) |
//! | 40.. | samples (f32 each; at most [`BLOCK_MAX`]) |

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::capture::{AudioBlock, BLOCK_MAX};
use crate::event::{unix_now, Detection};

/// First four bytes of an audio block message.
pub const AUDIO_MAGIC: [u8; 4] = *b"SSA1";
/// Bytes before the samples.
pub const AUDIO_HEADER_LEN: usize = 40;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    /// Shorter than its header or its declared contents.
    #[error("message of {len} bytes is too short (needs {need})")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Not an audio block message.
    #[error("not an audio block message (magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// The samples are not a whole number of f32 or more than a block holds.
    #[error(
        "audio block of {bytes} sample bytes (must be a multiple of 4, at most {max} samples)"
    )]
    BadLength {
        /// Bytes after the header.
        bytes: usize,
        /// Most samples a block holds.
        max: usize,
    },
    /// A rate of 0 Hz or a non-finite sample or time.
    #[error("audio block with {0}")]
    BadValue(&'static str),
    /// An event that is not the JSON of [`WireEvent`].
    #[error("keyword event is not valid JSON: {0}")]
    Json(String),
}

/// The sequence header every message carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WireHeader {
    /// Identifies one run of the sender: a restarted sender starts a new stream.
    pub stream: u64,
    /// Position in the stream, from 0.
    pub seq: u64,
    /// When the capture stage took the audio behind this message, Unix seconds.
    pub captured_at: f64,
}

/// A stream id for a sender starting now: the clock's nanoseconds mixed with the process id, so
/// two senders (or one restarted) practically never share one.
pub fn new_stream_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ ((std::process::id() as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Unix time of an `Instant` in the past (or now), by this process's clocks.
pub fn instant_to_unix(t: Instant) -> f64 {
    unix_now() - t.elapsed().as_secs_f64()
}

/// The `Instant` of a Unix time in the past, by this process's clocks (now, for a time in the
/// future: clocks of two hosts disagree).
pub fn unix_to_instant(unix: f64) -> Instant {
    let age = (unix_now() - unix).max(0.0);
    let now = Instant::now();
    if !age.is_finite() {
        return now;
    }
    now.checked_sub(Duration::from_secs_f64(age.min(1e6)))
        .unwrap_or(now)
}

/// Writes one audio block message into `out` (cleared first; no allocation once `out` has held
/// a full block).
pub fn encode_audio_block(header: &WireHeader, block: &AudioBlock, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&AUDIO_MAGIC);
    out.extend_from_slice(&header.stream.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&header.captured_at.to_le_bytes());
    out.extend_from_slice(&block.start_sample.to_le_bytes());
    out.extend_from_slice(&block.rate.to_le_bytes());
    for x in block.samples() {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// The capacity an audio message buffer needs for the largest block.
pub const AUDIO_MESSAGE_MAX: usize = AUDIO_HEADER_LEN + 4 * BLOCK_MAX;

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads one audio block message. The block's `captured_at` is the capture time mapped onto this
/// process's clock (so latencies measured downstream include the time on the wire).
pub fn decode_audio_block(bytes: &[u8]) -> Result<(WireHeader, AudioBlock), WireError> {
    if bytes.len() < AUDIO_HEADER_LEN {
        return Err(WireError::Truncated {
            len: bytes.len(),
            need: AUDIO_HEADER_LEN,
        });
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic != AUDIO_MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    let header = WireHeader {
        stream: u64_at(bytes, 4),
        seq: u64_at(bytes, 12),
        captured_at: f64::from_bits(u64_at(bytes, 20)),
    };
    if !header.captured_at.is_finite() {
        return Err(WireError::BadValue("a non-finite capture time"));
    }
    let start_sample = u64_at(bytes, 28);
    let rate = u32::from_le_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]);
    if rate == 0 {
        return Err(WireError::BadValue("a sample rate of 0 Hz"));
    }
    let payload = &bytes[AUDIO_HEADER_LEN..];
    if !payload.len().is_multiple_of(4) || payload.len() / 4 > BLOCK_MAX {
        return Err(WireError::BadLength {
            bytes: payload.len(),
            max: BLOCK_MAX,
        });
    }
    let mut block = AudioBlock {
        data: [0.0; BLOCK_MAX],
        len: payload.len() / 4,
        start_sample,
        rate,
        captured_at: unix_to_instant(header.captured_at),
    };
    for (d, c) in block.data.iter_mut().zip(payload.chunks_exact(4)) {
        let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !x.is_finite() {
            return Err(WireError::BadValue("a non-finite sample"));
        }
        *d = x;
    }
    Ok((header, block))
}

/// A keyword event on the wire (JSON): the named detection (its fields at the top level) with
/// its stream, sequence number, capture time and the model that made it. What `sepstream listen
/// --publish KEY` sends.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WireEvent {
    /// Identifies one run of the sender.
    pub stream: u64,
    /// Position in the stream, from 0.
    pub seq: u64,
    /// The model's name.
    pub model: String,
    /// When the capture stage took the audio that completed the word, Unix seconds.
    pub captured_at: f64,
    /// The keyword, its times, score and latency.
    #[serde(flatten)]
    pub detection: Detection,
}

impl WireEvent {
    /// The event for detection `d` of `model`.
    pub fn new(stream: u64, seq: u64, model: &str, d: &Detection) -> Self {
        WireEvent {
            stream,
            seq,
            model: model.to_string(),
            captured_at: d.decided_at - d.latency_ms / 1e3,
            detection: d.clone(),
        }
    }

    /// Its sequence header.
    pub fn header(&self) -> WireHeader {
        WireHeader {
            stream: self.stream,
            seq: self.seq,
            captured_at: self.captured_at,
        }
    }

    /// As one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Reads one event.
    pub fn from_json(bytes: &[u8]) -> Result<Self, WireError> {
        serde_json::from_slice(bytes).map_err(|e| WireError::Json(e.to_string()))
    }
}

/// What the receiver makes of one message's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next one expected (or the first of a stream).
    InOrder,
    /// After `missing` messages that never came (so far).
    AfterGap {
        /// Messages skipped.
        missing: u64,
    },
    /// Older than one already received (reordered or duplicated).
    Reordered,
}

/// A receiver's bookkeeping of one stream: gaps, reorderings, late arrivals and sender restarts.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    stream: Option<u64>,
    next: u64,
    /// Messages that never arrived (counted when a later one did).
    pub missing: u64,
    /// Messages that arrived after a later one.
    pub reordered: u64,
    /// Messages that arrived more than the late limit after capture.
    pub late: u64,
    /// Times a new stream began after another (the sender restarted).
    pub restarts: u64,
}

impl SeqTracker {
    /// Files one arrival; `age_s` is how long after capture it arrived, `late_s` the limit.
    pub fn observe(&mut self, h: &WireHeader, age_s: f64, late_s: f64) -> Arrival {
        if age_s > late_s {
            self.late += 1;
        }
        if self.stream != Some(h.stream) {
            if self.stream.is_some() {
                self.restarts += 1;
            }
            self.stream = Some(h.stream);
            self.next = h.seq + 1;
            return Arrival::InOrder;
        }
        if h.seq < self.next {
            self.reordered += 1;
            return Arrival::Reordered;
        }
        let missing = h.seq - self.next;
        self.next = h.seq + 1;
        if missing > 0 {
            self.missing += missing;
            Arrival::AfterGap { missing }
        } else {
            Arrival::InOrder
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> AudioBlock {
        let mut b = AudioBlock {
            data: [0.0; BLOCK_MAX],
            len: n,
            start_sample: 48_000,
            rate: 48_000,
            captured_at: Instant::now(),
        };
        for (i, x) in b.data[..n].iter_mut().enumerate() {
            *x = (i as f32 * 0.01).sin();
        }
        b
    }

    #[test]
    fn audio_blocks_round_trip_bit_for_bit() {
        let b = block(480);
        let h = WireHeader {
            stream: 7,
            seq: 42,
            captured_at: instant_to_unix(b.captured_at),
        };
        let mut buf = Vec::with_capacity(AUDIO_MESSAGE_MAX);
        encode_audio_block(&h, &b, &mut buf);
        assert_eq!(buf.len(), AUDIO_HEADER_LEN + 480 * 4);
        let (h2, b2) = decode_audio_block(&buf).unwrap();
        assert_eq!(h2, h);
        assert_eq!(b2.samples(), b.samples());
        assert_eq!((b2.start_sample, b2.rate), (48_000, 48_000));
        assert!(b2.captured_at.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn damaged_audio_messages_are_errors() {
        let b = block(10);
        let h = WireHeader {
            stream: 1,
            seq: 0,
            captured_at: 1.0,
        };
        let mut buf = Vec::new();
        encode_audio_block(&h, &b, &mut buf);
        assert!(matches!(
            decode_audio_block(&buf[..20]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            decode_audio_block(&buf[..buf.len() - 1]),
            Err(WireError::BadLength { .. })
        ));
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert!(matches!(
            decode_audio_block(&bad),
            Err(WireError::BadMagic(_))
        ));
        let mut bad = buf.clone();
        bad[36..40].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            decode_audio_block(&bad),
            Err(WireError::BadValue(_))
        ));
        let mut bad = buf.clone();
        bad[AUDIO_HEADER_LEN..AUDIO_HEADER_LEN + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            decode_audio_block(&bad),
            Err(WireError::BadValue(_))
        ));
        let mut big = buf.clone();
        big.resize(AUDIO_HEADER_LEN + 4 * (BLOCK_MAX + 1), 0);
        assert!(matches!(
            decode_audio_block(&big),
            Err(WireError::BadLength { .. })
        ));
    }

    #[test]
    fn tracker_counts_gaps_reorderings_late_and_restarts() {
        let mut t = SeqTracker::default();
        let h = |stream, seq| WireHeader {
            stream,
            seq,
            captured_at: 0.0,
        };
        assert_eq!(t.observe(&h(1, 5), 0.0, 0.1), Arrival::InOrder);
        assert_eq!(t.observe(&h(1, 6), 0.0, 0.1), Arrival::InOrder);
        assert_eq!(
            t.observe(&h(1, 9), 0.0, 0.1),
            Arrival::AfterGap { missing: 2 }
        );
        assert_eq!(t.observe(&h(1, 8), 0.5, 0.1), Arrival::Reordered);
        assert_eq!(t.observe(&h(2, 0), 0.0, 0.1), Arrival::InOrder);
        assert_eq!(t.observe(&h(2, 1), 0.0, 0.1), Arrival::InOrder);
        assert_eq!((t.missing, t.reordered, t.late, t.restarts), (2, 1, 1, 1));
    }

    #[test]
    fn events_round_trip_as_json() {
        let d = Detection {
            keyword: "yes".into(),
            label: 2,
            start: 1.0,
            end: 1.5,
            score: 0.9,
            decided_at: 1000.0,
            latency_ms: 20.0,
        };
        let e = WireEvent::new(3, 4, "kws", &d);
        assert!((e.captured_at - 999.98).abs() < 1e-9);
        let back = WireEvent::from_json(e.to_json().as_bytes()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.detection, d);
        // the detection's fields sit at the top level, beside the sequence header
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            (v["keyword"].as_str(), v["seq"].as_u64()),
            (Some("yes"), Some(4))
        );
        assert!(WireEvent::from_json(b"{\"seq\":1}").is_err());
    }
}
