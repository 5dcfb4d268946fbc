//! FLAC, MP3 and Ogg/Vorbis (any rate and channel count) decode to the same sound as the WAV they were made from; pipes and standard input read like files; damaged files are errors naming the file, never panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sepstream_audio::{read_audio, resample_clip, AudioError, AudioReader};
use sepstream_testkit::repo_root;

fn sample(name: &str) -> PathBuf {
    repo_root().join("assets").join(name)
}

/// Energy in 10 ms blocks, in dB.
fn envelope(x: &[f32], rate: u32) -> Vec<f64> {
    let b = rate as usize / 100;
    x.chunks(b)
        .map(|c| {
            let e = c.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / c.len() as f64;
            10.0 * (e + 1e-10).log10()
        })
        .collect()
}

/// Largest correlation of two envelopes over lags of up to `max_lag` blocks.
fn best_correlation(a: &[f64], b: &[f64], max_lag: usize) -> (f64, isize) {
    let corr = |lag: isize| {
        let pairs: Vec<(f64, f64)> = (0..a.len())
            .filter_map(|i| {
                let j = i as isize + lag;
                (j >= 0 && (j as usize) < b.len()).then(|| (a[i], b[j as usize]))
            })
            .collect();
        let n = pairs.len() as f64;
        let (ma, mb) = pairs
            .iter()
            .fold((0.0, 0.0), |s, p| (s.0 + p.0 / n, s.1 + p.1 / n));
        let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
        for (x, y) in &pairs {
            sab += (x - ma) * (y - mb);
            saa += (x - ma).powi(2);
            sbb += (y - mb).powi(2);
        }
        sab / (saa * sbb).sqrt()
    };
    (-(max_lag as isize)..=max_lag as isize)
        .map(|l| (corr(l), l))
        .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
}

#[test]
fn every_format_sounds_like_the_wav_it_was_made_from() {
    let (wav, wav_rate) = read_audio(&sample("sample_keywords.wav")).unwrap();
    let reference = envelope(&wav, wav_rate);
    for (file, codec, rate, channels) in [
        ("formats/sample_keywords_16k.flac", "flac", 16000, 1),
        (
            "formats/sample_keywords_22k_stereo.ogg",
            "ogg/vorbis",
            22050,
            2,
        ),
        ("formats/sample_keywords_44k.mp3", "mp3", 44100, 1),
    ] {
        let path = sample(file);
        let r = AudioReader::open(&path).unwrap();
        assert_eq!(r.info().sample_rate, rate, "{file}");
        assert_eq!(r.info().channels, channels, "{file}");
        assert!(r.info().codec.contains(codec), "{file}: {}", r.info().codec);
        let (x, got_rate) = read_audio(&path).unwrap();
        assert_eq!(got_rate, rate);
        let seconds = x.len() as f64 / f64::from(rate);
        let wav_seconds = wav.len() as f64 / f64::from(wav_rate);
        assert!(
            (seconds - wav_seconds).abs() < 0.08,
            "{file}: {seconds} s, the WAV {wav_seconds} s"
        );
        let y = resample_clip(&x, rate, wav_rate).unwrap();
        let (c, lag) = best_correlation(&reference, &envelope(&y, wav_rate), 10);
        assert!(c > 0.97, "{file}: envelope correlation {c} at lag {lag}");
        assert!(lag.abs() <= 5, "{file}: {lag} blocks of 10 ms off");
    }
    // Lossless FLAC at the WAV's rate is the same samples.
    let (flac, _) = read_audio(&sample("formats/sample_keywords_16k.flac")).unwrap();
    assert_eq!(flac.len(), wav.len());
    assert!(flac.iter().zip(&wav).all(|(a, b)| a == b));
}

fn decode_all(mut r: AudioReader) -> (Vec<f32>, Option<AudioError>) {
    let mut all = Vec::new();
    let mut block = Vec::new();
    loop {
        match r.read_block(&mut block) {
            Ok(0) => return (all, None),
            Ok(_) => all.extend_from_slice(&block),
            Err(e) => return (all, Some(e)),
        }
    }
}

#[test]
fn a_pipe_reads_like_the_file_for_every_format() {
    for file in [
        "sample_keywords.wav",
        "formats/sample_keywords_16k.flac",
        "formats/sample_keywords_22k_stereo.ogg",
        "formats/sample_keywords_44k.mp3",
    ] {
        let path = sample(file);
        let (want, _) = read_audio(&path).unwrap();
        let mut cat = Command::new("cat")
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("cat");
        let pipe = cat.stdout.take().unwrap();
        let r = AudioReader::from_reader(Path::new("-"), Box::new(pipe)).unwrap();
        let (got, err) = decode_all(r);
        cat.wait().unwrap();
        assert!(err.is_none(), "{file}: {err:?}");
        assert_eq!(got, want, "{file}");
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepstream-audio-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn cut_compressed_files_keep_what_came_before_the_cut() {
    for file in [
        "formats/sample_keywords_16k.flac",
        "formats/sample_keywords_22k_stereo.ogg",
        "formats/sample_keywords_44k.mp3",
    ] {
        let bytes = std::fs::read(sample(file)).unwrap();
        let (whole, rate) = read_audio(&sample(file)).unwrap();
        let p = tmp(&file.replace('/', "_"));
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let (got, err) = decode_all(AudioReader::open(&p).unwrap());
        let seconds = got.len() as f64 / f64::from(rate);
        // Half the bytes hold roughly half the sound (variable bit rates: a wide margin).
        assert!(
            seconds > 2.0 && got.len() < whole.len(),
            "{file}: {seconds} s decoded from half the file"
        );
        // What was decoded is the start of the whole file's sound.
        let n = got.len().min(whole.len()) * 9 / 10;
        let max_diff = got[..n]
            .iter()
            .zip(&whole[..n])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-3, "{file}: differs by {max_diff}");
        // FLAC announces its length, so the cut is an error; MP3 and Ogg may just end.
        if file.ends_with(".flac") {
            let e = err.expect("a cut FLAC is an error");
            assert!(matches!(e, AudioError::Truncated { .. }), "{file}: {e:?}");
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        }
    }
}

#[test]
fn corrupt_flac_and_mp3_are_errors_naming_the_file() {
    for file in [
        "formats/sample_keywords_16k.flac",
        "formats/sample_keywords_44k.mp3",
        "formats/sample_keywords_22k_stereo.ogg",
    ] {
        let good = std::fs::read(sample(file)).unwrap();
        let (whole, _) = read_audio(&sample(file)).unwrap();
        // Garbage over the header: not audio.
        let mut bad = good.clone();
        for b in bad.iter_mut().take(64) {
            *b = 0x5A;
        }
        let p = tmp(&format!("header_{}", file.replace('/', "_")));
        std::fs::write(&p, &bad).unwrap();
        match AudioReader::open(&p) {
            Err(e) => assert!(e.to_string().contains(&p.display().to_string()), "{e}"),
            Ok(r) => {
                let (_, err) = decode_all(r);
                if let Some(e) = err {
                    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
                }
            }
        }
        // Random bytes over the middle: whatever the decoder makes of it, no panic, and the
        // error (if any) names the file with an offset past the start.
        let mut bad = good.clone();
        let mid = good.len() / 2;
        let mut state = 0x1234_5678u32;
        for b in &mut bad[mid..mid + 2000] {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b = state as u8;
        }
        let p = tmp(&format!("middle_{}", file.replace('/', "_")));
        std::fs::write(&p, &bad).unwrap();
        let (got, err) = decode_all(AudioReader::open(&p).unwrap());
        assert!(
            got.len() > whole.len() / 4,
            "{file}: kept {} frames",
            got.len()
        );
        if let Some(e) = err {
            let msg = e.to_string();
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(
                matches!(e, AudioError::Damaged { offset, .. } | AudioError::Truncated { offset, .. } if offset > 0),
                "{msg}"
            );
        }
    }
}

#[test]
fn garbage_is_not_audio() {
    let p = tmp("words.mp3");
    std::fs::write(&p, "no sound in here, only words ".repeat(200)).unwrap();
    let e = AudioReader::open(&p).err().expect("text is not audio");
    assert!(matches!(e, AudioError::NotAudio { .. }), "{e:?}");
    assert!(e.to_string().contains("words.mp3"), "{e}");
}

/// Found by the audio_reader fuzz target: damaged bytes that a compressed decoder turned into
/// samples that are not finite. Every sample read is now finite and within full scale.
#[test]
fn damaged_compressed_data_never_gives_samples_beyond_full_scale() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_found/not_finite_compressed.bin");
    let Ok(mut reader) = sepstream_audio::AudioReader::open(&path) else {
        return; // refused at the header: nothing to check
    };
    let mut block = Vec::new();
    let mut frames = 0;
    while let Ok(n) = reader.read_block(&mut block) {
        if n == 0 {
            break;
        }
        frames += n;
        assert!(block.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    }
    assert!(frames > 0, "the case decodes some frames");
}
