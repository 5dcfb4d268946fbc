//! The Rust front end against golden features made independently with numpy/scipy/librosa (see tests/golden/README.md).

use std::path::PathBuf;

use sepstream_audio::{read_wav, FeatureExtractor, FeatureStream, FrontendConfig};

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
    let (samples, rate) = read_wav(&dir.join(format!("{name}.wav"))).expect("golden wav");
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
