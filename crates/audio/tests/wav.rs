//! WAV input: every supported format reads back right; every kind of bad file gives a typed error naming the file, never a panic or a huge allocation.

use std::path::{Path, PathBuf};

use sepstream_audio::{read_wav, AudioError, WavBlockReader, WavFormat};

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
            let (x, rate) = read_wav(&p).unwrap();
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
            assert_eq!(r.info().frames, n as u64);
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
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
    let p = write("empty_file.wav", b"");
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn missing_file_is_io_error() {
    let p = tmp("does_not_exist.wav");
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::Io { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn truncated_file() {
    // Cut inside the header.
    let full = wav_bytes(1, 1, 16000, 16, &[0u8; 200], 200);
    let p = write("cut_header.wav", &full[..30]);
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
    // Cut inside the data.
    let p = write("cut_data.wav", &full[..44 + 100]);
    let e = read_wav(&p).unwrap_err();
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
    let (r, stats) = sepstream_testkit::count_allocations(|| read_wav(&p));
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
    let (r, stats) = sepstream_testkit::count_allocations(|| read_wav(&p));
    let e = r.unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e:?}");
    names_file(&e, &p);
    assert!(stats.bytes < 1 << 20, "allocated {} bytes", stats.bytes);
}

#[test]
fn zero_samples() {
    let p = write("zero.wav", &wav_bytes(1, 1, 16000, 16, &[], 0));
    let e = read_wav(&p).unwrap_err();
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
        let e = read_wav(&p).unwrap_err();
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
        read_wav(&p).unwrap_err(),
        AudioError::BadSampleRate { rate: 0, .. }
    ));
}

#[test]
fn unsupported_formats() {
    // 64-bit float.
    let p = write("f64.wav", &wav_bytes(3, 1, 16000, 64, &[0u8; 64], 64));
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
    // 4-bit PCM.
    let p = write("pcm4.wav", &wav_bytes(1, 1, 16000, 4, &[0u8; 64], 64));
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
    // 4-bit IMA ADPCM (format tag 0x11).
    let p = write("adpcm.wav", &wav_bytes(0x11, 1, 16000, 4, &[0u8; 64], 64));
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
    // 33 channels.
    let p = write("ch33.wav", &wav_bytes(1, 33, 16000, 16, &[0u8; 66], 66));
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e:?}");
    names_file(&e, &p);
}
