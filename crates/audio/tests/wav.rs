//! WAV input: every supported sample format reads back right; every kind of bad file gives a typed error naming the file, never a panic or a huge allocation.

use std::path::{Path, PathBuf};

use sepstream_audio::{read_audio, AudioError, WavBlockReader, WavFormat};

#[global_allocator]
static ALLOC: sepstream_testkit::CountingAlloc = sepstream_testkit::CountingAlloc;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepstream-audio-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A canonical 44-byte-header WAV; `data_len` is what the header claims.
fn wav_bytes(tag: u16, ch: u16, rate: u32, bits: u16, data: &[u8], data_len: u32) -> Vec<u8> {
    let block_align = ch * bits.div_ceil(8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36u32.wrapping_add(data_len)).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&ch.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate.wrapping_mul(block_align as u32)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn names_file(e: &AudioError, p: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&p.display().to_string()),
        "error does not name the file: {msg}"
    );
}

#[test]
fn reads_every_supported_format_and_downmixes() {
    let n = 1000usize;
    let ref_l: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.01).sin() * 0.8).collect();
    let ref_r: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.023).cos() * 0.5).collect();
    for (bits, float) in [
        (8u16, false),
        (16, false),
        (24, false),
        (32, false),
        (32, true),
    ] {
        for ch in [1u16, 2, 5] {
            let p = tmp(&format!("ok_{bits}_{float}_{ch}.wav"));
            let spec = hound::WavSpec {
                channels: ch,
                sample_rate: 22050,
                bits_per_sample: bits,
                sample_format: if float {
                    hound::SampleFormat::Float
                } else {
                    hound::SampleFormat::Int
                },
            };
            let mut w = hound::WavWriter::create(&p, spec).unwrap();
            let full = (1i64 << (bits - 1)) as f64;
            for i in 0..n {
                for c in 0..ch {
                    let v = if c % 2 == 0 { ref_l[i] } else { ref_r[i] };
                    if float {
                        w.write_sample(v as f32).unwrap();
                    } else {
                        w.write_sample((v * full).round().min(full - 1.0) as i32)
                            .unwrap();
                    }
                }
            }
            w.finalize().unwrap();
            let (x, rate) = read_audio(&p).unwrap();
            assert_eq!(rate, 22050);
            assert_eq!(x.len(), n);
            let tol = if float { 1e-6 } else { 2.0 / full + 1e-6 };
            for i in 0..n {
                let evens = ch.div_ceil(2) as f64;
                let odds = (ch / 2) as f64;
                let want = (ref_l[i] * evens + ref_r[i] * odds) / ch as f64;
                assert!(
                    (x[i] as f64 - want).abs() <= tol,
                    "{bits}-bit float={float} ch={ch} i={i}: {} vs {want}",
                    x[i]
                );
            }
            // Block reader gives the same samples in blocks.
            let mut r = WavBlockReader::open(&p).unwrap();
            assert_eq!(r.info().channels, ch);
            assert_eq!(
                r.info().format,
                if float {
                    WavFormat::Float32
                } else {
                    WavFormat::Int(bits)
                }
            );
            assert_eq!(r.info().frames, Some(n as u64));
            r.set_block_frames(77);
            let mut all = Vec::new();
            let mut block = Vec::new();
            while r.read_block(&mut block).unwrap() > 0 {
                assert!(block.len() <= 77);
                all.extend_from_slice(&block);
            }
            assert_eq!(all, x);
        }
    }
}

#[test]
fn not_a_wav() {
    let p = write(
        "text.wav",
        b"this is not a wav file at all, just some words\n",
    );
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::NotAudio { .. }), "{e:?}");
    names_file(&e, &p);
    let p = write("empty_file.wav", b"");
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn missing_file_is_io_error() {
    let p = tmp("does_not_exist.wav");
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Io { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn truncated_file() {
    // Cut inside the header.
    let full = wav_bytes(1, 1, 16000, 16, &[0u8; 200], 200);
    let p = write("cut_header.wav", &full[..30]);
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
    // Cut inside the data.
    let p = write("cut_data.wav", &full[..44 + 100]);
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Truncated { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn lying_header_neither_panics_nor_allocates_its_claim() {
    // Claims ~4 GB of samples, holds 20 bytes.
    let p = write(
        "liar.wav",
        &wav_bytes(1, 1, 16000, 16, &[1u8; 20], 0xFFFF_FFF0),
    );
    let (r, stats) = sepstream_testkit::count_allocations(|| read_audio(&p));
    let e = r.unwrap_err();
    assert!(matches!(e, AudioError::Truncated { .. }), "{e:?}");
    names_file(&e, &p);
    assert!(
        stats.bytes < 1 << 20,
        "allocated {} bytes for a 64-byte file",
        stats.bytes
    );
}

#[test]
fn lying_chunk_before_data_is_not_a_wav_and_allocates_little() {
    // A "LIST" chunk claiming 4 GB sits between fmt and data.
    let mut b = wav_bytes(1, 1, 16000, 16, &[], 0);
    b.truncate(36);
    b.extend_from_slice(b"LIST");
    b.extend_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 100]);
    let p = write("liar_list.wav", &b);
    let (r, stats) = sepstream_testkit::count_allocations(|| read_audio(&p));
    let e = r.unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
    assert!(stats.bytes < 1 << 20, "allocated {} bytes", stats.bytes);
}

#[test]
fn zero_samples() {
    let p = write("zero.wav", &wav_bytes(1, 1, 16000, 16, &[], 0));
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Empty { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn absurd_sample_rates() {
    for rate in [0u32, 1, 999, 384_001, 10_000_000, u32::MAX / 2] {
        let p = write(
            &format!("rate_{rate}.wav"),
            &wav_bytes(1, 1, rate, 16, &[0u8; 64], 64),
        );
        let e = read_audio(&p).unwrap_err();
        assert!(
            matches!(e, AudioError::BadSampleRate { rate: r, .. } if r == rate)
                || matches!(e, AudioError::NotWav { .. }),
            "{rate}: {e:?}"
        );
        names_file(&e, &p);
    }
    // The plain cases must be the typed rate error.
    let p = write("rate0.wav", &wav_bytes(1, 1, 0, 16, &[0u8; 64], 64));
    assert!(matches!(
        read_audio(&p).unwrap_err(),
        AudioError::BadSampleRate { rate: 0, .. }
    ));
}

#[test]
fn unsupported_formats() {
    // 64-bit float.
    let p = write("f64.wav", &wav_bytes(3, 1, 16000, 64, &[0u8; 64], 64));
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
    // 4-bit PCM.
    let p = write("pcm4.wav", &wav_bytes(1, 1, 16000, 4, &[0u8; 64], 64));
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
    // 4-bit IMA ADPCM (format tag 0x11).
    let p = write("adpcm.wav", &wav_bytes(0x11, 1, 16000, 4, &[0u8; 64], 64));
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
    // 33 channels.
    let p = write("ch33.wav", &wav_bytes(1, 33, 16000, 16, &[0u8; 66], 66));
    let e = read_audio(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
}

/// 16-bit mono samples 0, 1, 2, ... as little-endian bytes.
fn ramp_bytes(frames: usize) -> Vec<u8> {
    (0..frames)
        .flat_map(|i| (i as i16).to_le_bytes())
        .collect::<Vec<u8>>()
}

fn ramp_value(i: usize) -> f32 {
    i as f32 / 32768.0
}

#[test]
fn header_without_length_is_read_to_the_end() {
    // 0 (arecord to a pipe, crashed recorders), 0xFFFFFFFF (ffmpeg), 0x7FFFF000 (sox).
    for placeholder in [0u32, u32::MAX, 0x7FFF_F000] {
        let frames = 5000;
        let mut bytes = wav_bytes(1, 1, 16000, 16, &ramp_bytes(frames), placeholder);
        bytes.push(0x55); // half a frame at the end: not audio
        let p = write(&format!("stream_{placeholder:x}.wav"), &bytes);
        let mut r = WavBlockReader::open(&p).unwrap();
        assert_eq!(r.info().frames, None, "{placeholder:#x}");
        r.set_block_frames(1024);
        let mut all = Vec::new();
        let mut block = Vec::new();
        while r.read_block(&mut block).unwrap() > 0 {
            all.extend_from_slice(&block);
        }
        assert_eq!(all.len(), frames, "{placeholder:#x}");
        assert!(all.iter().enumerate().all(|(i, v)| *v == ramp_value(i)));
        let (x, _) = read_audio(&p).unwrap();
        assert_eq!(x, all);
    }
}

#[test]
fn truncated_data_returns_every_frame_before_the_cut_then_the_offset() {
    let frames = 3000;
    let full = wav_bytes(1, 1, 16000, 16, &ramp_bytes(frames), (frames * 2) as u32);
    let cut = 44 + 2 * 1234 + 1; // inside frame 1234
    let p = write("cut_at_1234.wav", &full[..cut]);
    let mut r = sepstream_audio::AudioReader::open(&p).unwrap();
    r.set_block_frames(500);
    let mut all = Vec::new();
    let mut block = Vec::new();
    let err = loop {
        match r.read_block(&mut block) {
            Ok(0) => panic!("a cut file must end in an error"),
            Ok(_) => all.extend_from_slice(&block),
            Err(e) => break e,
        }
    };
    assert_eq!(all.len(), 1234);
    assert!(all.iter().enumerate().all(|(i, v)| *v == ramp_value(i)));
    match &err {
        AudioError::Truncated { offset, .. } => assert_eq!(*offset, cut as u64),
        other => panic!("{other:?}"),
    }
    names_file(&err, &p);
    assert!(err.to_string().contains(&format!("byte {cut}")), "{err}");
    // The next call ends quietly.
    assert_eq!(r.read_block(&mut block).unwrap(), 0);
}

#[test]
fn extensible_header_and_odd_chunks_before_the_data() {
    // WAVE_FORMAT_EXTENSIBLE (tag 0xFFFE, sub-format PCM), a LIST chunk of odd length (padded).
    let frames = 400;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
    v.extend_from_slice(&40u32.to_le_bytes());
    v.extend_from_slice(&0xFFFEu16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&32000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(&22u16.to_le_bytes()); // cbSize
    v.extend_from_slice(&16u16.to_le_bytes()); // valid bits
    v.extend_from_slice(&4u32.to_le_bytes()); // channel mask
    v.extend_from_slice(&1u16.to_le_bytes()); // sub-format GUID starts with the tag
    v.extend_from_slice(&[0u8; 14]);
    v.extend_from_slice(b"LIST");
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(b"abc\0");
    v.extend_from_slice(b"data");
    v.extend_from_slice(&((frames * 2) as u32).to_le_bytes());
    v.extend_from_slice(&ramp_bytes(frames));
    let p = write("extensible.wav", &v);
    let (x, rate) = read_audio(&p).unwrap();
    assert_eq!(rate, 16000);
    assert_eq!(x.len(), frames);
    assert!(x.iter().enumerate().all(|(i, v)| *v == ramp_value(i)));
}

/// A WAV stream of `seconds` of a 16 kHz tone made on the fly (placeholder length, as a pipe
/// from a recorder gives), never held in memory.
struct ToneStream {
    header: Vec<u8>,
    sent: usize,
    frames_left: u64,
    phase: u64,
}

impl ToneStream {
    fn new(seconds: u64) -> Self {
        ToneStream {
            header: wav_bytes(1, 1, 16000, 16, &[], u32::MAX),
            sent: 0,
            frames_left: seconds * 16000,
            phase: 0,
        }
    }
}

impl std::io::Read for ToneStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.sent < self.header.len() {
            let n = buf.len().min(self.header.len() - self.sent);
            buf[..n].copy_from_slice(&self.header[self.sent..self.sent + n]);
            self.sent += n;
            return Ok(n);
        }
        let frames = ((buf.len() / 2) as u64).min(self.frames_left) as usize;
        for f in 0..frames {
            let v = ((self.phase as f32 * 0.05).sin() * 8000.0) as i16;
            buf[2 * f..2 * f + 2].copy_from_slice(&v.to_le_bytes());
            self.phase += 1;
        }
        self.frames_left -= frames as u64;
        Ok(2 * frames)
    }
}

#[test]
fn memory_stays_flat_however_long_the_stream() {
    // Reading one minute and twenty minutes of a pipe allocates the same: the reader holds one
    // block, whatever the length.
    let read_all = |seconds: u64| {
        let (frames, stats) = sepstream_testkit::count_allocations(|| {
            let mut r = sepstream_audio::AudioReader::from_reader(
                Path::new("-"),
                Box::new(ToneStream::new(seconds)),
            )
            .unwrap();
            let mut block = Vec::new();
            let mut frames = 0u64;
            while let Ok(n) = r.read_block(&mut block) {
                if n == 0 {
                    break;
                }
                frames += n as u64;
            }
            frames
        });
        assert_eq!(frames, seconds * 16000);
        stats
    };
    let short = read_all(60);
    let long = read_all(20 * 60);
    assert_eq!(short.allocations, long.allocations, "{short:?} vs {long:?}");
    assert_eq!(short.bytes, long.bytes);
    assert!(
        long.bytes < 1 << 20,
        "{} bytes for a 20-minute stream",
        long.bytes
    );
}

/// Found by the audio_reader fuzz target (MP3 bytes under a float WAV header): float samples
/// that are NaN, infinite or far beyond full scale came through as they were, and one NaN
/// poisons every later frame of a stream's state.
#[test]
fn float_samples_that_are_not_finite_or_beyond_full_scale_are_played_like_a_sound_card() {
    let values = [
        0.25f32,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3.0e38,
        -2.0,
        0.5,
    ];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let p = write(
        "nonfinite.wav",
        &wav_bytes(3, 1, 16000, 32, &data, data.len() as u32),
    );
    let (samples, rate) = read_audio(&p).unwrap();
    assert_eq!(rate, 16000);
    assert_eq!(samples, vec![0.25, 0.0, 1.0, -1.0, 1.0, -1.0, 0.5]);
}
