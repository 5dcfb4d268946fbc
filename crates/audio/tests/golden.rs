//! The Rust front end against golden features made independently with numpy/scipy/librosa (see tests/golden/README.md).

use std::path::PathBuf;

use sepstream_audio::{read_audio, FeatureExtractor, FeatureStream, FrontendConfig};

const TOL: f32 = 1e-3;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn load(name: &str) -> (FrontendConfig, Vec<f32>, Vec<f32>) {
    let dir = golden_dir();
    let cfg = FrontendConfig::from_toml_str(
        &std::fs::read_to_string(dir.join(format!("{name}.toml"))).expect("golden toml"),
    )
    .expect("golden config parses");
    let (samples, rate) = read_audio(&dir.join(format!("{name}.wav"))).expect("golden wav");
    assert_eq!(rate, cfg.sample_rate);
    let bytes = std::fs::read(dir.join(format!("{name}.f32"))).expect("golden features");
    let want: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (cfg, samples, want)
}

fn check(name: &str) {
    let (cfg, samples, want) = load(name);
    let got = FeatureExtractor::new(&cfg).clip(&samples);
    assert_eq!(got.len(), want.len(), "{name}: value count");
    assert_eq!(got.len(), cfg.n_frames(samples.len()) * cfg.feature_len());
    let mut worst = 0.0f32;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = (g - w).abs();
        worst = worst.max(d);
        assert!(
            d <= TOL,
            "{name}: frame {} feature {}: rust {g} vs golden {w}",
            i / cfg.feature_len(),
            i % cfg.feature_len()
        );
    }
    eprintln!("{name}: max |rust - golden| = {worst:e}");

    // The stream gives the same values, pushed in odd blocks.
    let mut stream = FeatureStream::new(&cfg, cfg.sample_rate).expect("stream");
    let mut streamed = Vec::new();
    for block in samples.chunks(97) {
        stream.push(block, |_, f| streamed.extend_from_slice(f));
    }
    assert_eq!(streamed, got, "{name}: stream differs from batch");
}

#[test]
fn golden_yes_htk_logmel() {
    check("yes_htk_logmel");
}

#[test]
fn golden_stopgo_slaney_mfcc() {
    check("stopgo_slaney_mfcc");
}

#[test]
fn golden_chirp_htk_norm() {
    check("chirp_htk_norm");
}

#[test]
fn stream_audio_gives_the_batch_frames_and_timestamps() {
    let (cfg, samples, _) = load("yes_htk_logmel");
    let want = FeatureExtractor::new(&cfg).clip(&samples);
    let mut got = Vec::new();
    let mut ts = Vec::new();
    let info =
        sepstream_audio::stream_audio(&golden_dir().join("yes_htk_logmel.wav"), &cfg, |t, f| {
            ts.push(t);
            got.extend_from_slice(f);
        })
        .unwrap();
    assert_eq!(info.sample_rate, 16000);
    assert_eq!(got, want);
    for (i, t) in ts.iter().enumerate() {
        assert_eq!(*t, cfg.frame_time(i));
    }
}

#[test]
fn resample_clip_round_trip_keeps_length_and_alignment() {
    let (_, samples, _) = load("yes_htk_logmel");
    let up = sepstream_audio::resample_clip(&samples, 16000, 48000).unwrap();
    assert_eq!(up.len(), samples.len() * 3);
    let down = sepstream_audio::resample_clip(&up, 48000, 16000).unwrap();
    assert_eq!(down.len(), samples.len());
    // The round trip is close sample for sample (only the resampler's low-pass near 8 kHz
    // differs), and much closer than the same comparison shifted by one sample: no time shift.
    let max_err = |shift: usize| -> f32 {
        samples
            .iter()
            .zip(&down[shift..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    };
    let peak = samples.iter().map(|v| v.abs()).fold(0.0, f32::max);
    let err = max_err(0);
    assert!(err < 0.05 * peak, "max error {err}, peak {peak}");
    assert!(
        err * 3.0 < max_err(1),
        "aligned {err} vs shifted {}",
        max_err(1)
    );
}
