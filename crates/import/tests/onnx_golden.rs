//! An ONNX model exported from Keras (`scripts/make_onnx_golden.py`): imported, its windowed
//! posteriors equal Keras' within 1e-4, and bad ONNX input gives typed errors.

use std::path::Path;

use sepstream_import::{import_path, ImportError, ImportOptions};

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn keras_export_windowed_equals_keras() {
    let opts = ImportOptions {
        frame_rate: Some(50.0),
        labels: Some(["a", "b", "c", "d", "e"].map(String::from).to_vec()),
        ..ImportOptions::default()
    };
    let imported = import_path(&golden_dir().join("small_sep_cnn.onnx"), &opts).unwrap();
    let kinds: Vec<&str> = imported.spec.layers.iter().map(|l| l.kind.name()).collect();
    // ReLU6 after the depthwise half and ReLU after the pointwise half: not one separable layer.
    assert_eq!(
        kinds,
        [
            "conv2d",
            "depthwise2d",
            "pointwise",
            "avgpool",
            "dense",
            "softmax"
        ]
    );
    let net = imported.network().unwrap();
    let g: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join("small_sep_cnn.json")).unwrap(),
    )
    .unwrap();
    let frames = g["frames"].as_u64().unwrap() as usize;
    let mut worst = 0f32;
    for case in g["cases"].as_array().unwrap() {
        let x: Vec<f32> = case["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let out = net.forward_window(&x, frames);
        let post = &out[out.len() - 5..];
        for (k, (a, b)) in post
            .iter()
            .zip(case["posteriors"].as_array().unwrap())
            .enumerate()
        {
            let b = b.as_f64().unwrap() as f32;
            worst = worst.max((a - b).abs());
            assert!((a - b).abs() <= 1e-4, "posterior {k}: ours {a}, Keras {b}");
        }
    }
    eprintln!("worst posterior difference {worst:e}");
}

#[test]
fn truncated_onnx_is_a_decode_error_naming_the_file() {
    let bytes = std::fs::read(golden_dir().join("small_sep_cnn.onnx")).unwrap();
    let path =
        std::env::temp_dir().join(format!("sepstream-import-{}-cut.onnx", std::process::id()));
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = import_path(&path, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("cut.onnx"), "{err}");
}

#[test]
fn unknown_extension_is_refused() {
    let err = import_path(Path::new("model.tflite"), &ImportOptions::default());
    // The file does not exist, so reading fails first; a real file with that extension is
    // refused by format.
    assert!(err.is_err());
    let path = std::env::temp_dir().join(format!("sepstream-import-{}.tflite", std::process::id()));
    std::fs::write(&path, b"TFL3").unwrap();
    let err = import_path(&path, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::UnknownFormat { .. }), "{err}");
}
