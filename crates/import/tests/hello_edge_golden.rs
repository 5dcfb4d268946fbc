//! The imported Hello Edge DS-CNN graphs against TensorFlow's own outputs (made by
//! `scripts/make_tf_golden.py`): MFCC features within 1e-3, windowed posteriors within 1e-4.

use std::path::{Path, PathBuf};

use sepstream_audio::{read_audio, FeatureExtractor, FrontendConfig};
use sepstream_import::{import_path, ImportOptions};

/// `../shared` when it holds the Hello Edge graphs and the Speech Commands clips; else says why
/// the test skips.
fn shared() -> Option<PathBuf> {
    let root = sepstream_testkit::shared_data().join("..");
    let models = root.join("models/hello_edge");
    let data = root.join("data/speech_commands");
    if models.join("DS_CNN_L.pb").exists() && data.is_dir() {
        Some(root)
    } else {
        sepstream_testkit::skip(format!(
            "{} is missing (the Hello Edge graphs and Speech Commands clips)",
            root.display()
        ));
        None
    }
}

fn golden() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/hello_edge_tf.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// One clip as the graph reads it: exactly `window` seconds, zero padded or cut.
fn window_samples(path: &Path, fe: &FrontendConfig, window: f64) -> Vec<f32> {
    let (mut s, rate) = read_audio(path).unwrap();
    assert_eq!(rate, fe.sample_rate());
    s.resize((window * rate as f64).round() as usize, 0.0);
    s
}

fn check_model(model: &str) {
    let Some(root) = shared() else { return };
    let g = golden();
    let imported = import_path(
        &root.join(format!("models/hello_edge/{model}.pb")),
        &ImportOptions::default(),
    )
    .unwrap();
    let net = imported.network().unwrap();
    let fe = FrontendConfig::from_table(imported.spec.frontend.as_ref().unwrap()).unwrap();
    let window = imported.spec.decision.as_ref().unwrap()["window"]
        .as_float()
        .unwrap();
    let mut fx = FeatureExtractor::new(&fe);
    let mut worst_feature = 0f32;
    let mut worst_posterior = 0f32;
    for clip in g["clips"].as_array().unwrap() {
        let name = clip["clip"].as_str().unwrap();
        let samples = window_samples(&root.join("data/speech_commands").join(name), &fe, window);
        let feats = fx.clip(&samples);
        let want = floats(&clip["mfcc"]);
        assert_eq!(feats.len(), want.len(), "{name}: feature count");
        for (i, (a, b)) in feats.iter().zip(&want).enumerate() {
            let d = (a - b).abs();
            worst_feature = worst_feature.max(d);
            assert!(d <= 1e-3, "{name}: feature {i}: ours {a}, TensorFlow {b}");
        }
        let frames = feats.len() / fe.feature_len();
        let out = net.forward_window(&feats, frames);
        let post = &out[out.len() - net.output_shape().len()..];
        let want = floats(&clip[model]);
        assert_eq!(post.len(), want.len());
        for (k, (a, b)) in post.iter().zip(&want).enumerate() {
            let d = (a - b).abs();
            worst_posterior = worst_posterior.max(d);
            assert!(
                d <= 1e-4,
                "{model} {name}: posterior {k}: ours {a}, TensorFlow {b}"
            );
        }
    }
    eprintln!("{model}: worst feature difference {worst_feature:e}, worst posterior difference {worst_posterior:e}");
}

#[test]
fn ds_cnn_l_windowed_equals_tensorflow_or_skip_without_shared() {
    check_model("DS_CNN_L");
}

#[test]
fn ds_cnn_m_windowed_equals_tensorflow_or_skip_without_shared() {
    check_model("DS_CNN_M");
}

#[test]
fn ds_cnn_s_windowed_equals_tensorflow_or_skip_without_shared() {
    check_model("DS_CNN_S");
}
