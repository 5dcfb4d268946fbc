//! The peers compute what sepstream streams: the imported DS-CNN-L's own weights in candle and tract, per-axis strides, and the binary's `--model`.

use std::path::Path;
use std::process::Command;

use sepstream_nn::{bundled, ModelSpec, Network};
use sepstream_peers::{agreement, test_frames, window_frames, without_softmax, Agreement};

/// Frames for `hops` hops after the network's window.
fn frames_for(net: &Network, hops: usize) -> Vec<f32> {
    test_frames(net, window_frames(net) + hops * net.time_stride())
}

/// Every column ran (tract's pulse mode included) and is within `tol` of streaming.
fn assert_agrees(what: &str, a: &Agreement, tol: f32) {
    let keys: Vec<&str> = a.columns.iter().map(|c| c.0).collect();
    assert_eq!(
        keys,
        ["b", "c", "d", "e"],
        "{what}: columns that ran (pulse: {:?})",
        a.pulse_error
    );
    for (k, d) in &a.columns {
        assert!(
            *d <= tol,
            "{what}: column ({k}) is {d:e} from streaming (tolerance {tol:e})"
        );
    }
}

#[test]
fn hello_edge_ds_cnn_l_weights_give_the_same_outputs_in_every_engine() {
    let net = bundled::find("hello_edge_ds_cnn_l")
        .expect("DS-CNN-L is bundled")
        .network()
        .unwrap();
    // The case the candle peer once refused: time stride 2, width stride 1.
    let g = net.layers()[0].geometry().unwrap();
    assert_eq!((g.s_t, g.s_w), (2, 1));
    assert_eq!(net.time_stride(), 4);

    let hops = 12;
    let frames = frames_for(&net, hops);
    let logits = agreement(&without_softmax(&net).unwrap(), &frames, hops).unwrap();
    let (lo, hi) = logits.reference_range;
    // Trained weights: logits tens apart; the check is 1e-5 of their largest magnitude.
    assert!(hi - lo > 1.0, "logits range over [{lo}, {hi}] only");
    let scale = lo.abs().max(hi.abs());
    assert_agrees("DS-CNN-L logits", &logits, 1e-5 * scale);

    let posteriors = agreement(&net, &frames, hops).unwrap();
    assert_agrees("DS-CNN-L posteriors", &posteriors, 1e-5);
}

#[test]
fn candle_takes_a_stride_per_axis() {
    // Time and width strides that differ both ways, with and without a common factor.
    let spec = ModelSpec::from_toml_str(
        r#"
name = "strides"
[input]
width = 10
channels = 2
frame_rate = 50.0

[[layers]]
kind = "conv2d"
out_channels = 6
kernel = [4, 3]
stride = [2, 1]
activation = "relu"

[[layers]]
kind = "separable2d"
out_channels = 6
kernel = [3, 3]
stride = [1, 2]
activation = "relu"

[[layers]]
kind = "separable2d"
out_channels = 6
kernel = [3, 3]
stride = [3, 2]
activation = "relu"

[[layers]]
kind = "separable2d"
out_channels = 6
kernel = [3, 3]
stride = [4, 2]
pad_left = 0

[[layers]]
kind = "avgpool"
frames = 3

[[layers]]
kind = "dense"
units = 5
"#,
    )
    .unwrap();
    for seed in [1, 2, 3] {
        let net = Network::random(spec.clone(), seed).unwrap();
        assert_eq!(net.time_stride(), 24);
        let hops = 6;
        let a = agreement(&net, &frames_for(&net, hops), hops).unwrap();
        let (lo, hi) = a.reference_range;
        assert!(
            hi - lo > 1e-2,
            "seed {seed}: outputs range over [{lo}, {hi}] only"
        );
        assert_agrees(
            &format!("seed {seed}"),
            &a,
            1e-5 * lo.abs().max(hi.abs()).max(1.0),
        );
    }
}

fn run_peers(args: &[&str]) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_sepstream-peers"))
        .args(args)
        .args(["--hops", "3", "--seconds", "0", "--json"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sepstream-peers {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every row's largest difference from streaming, by column.
fn row_diffs(doc: &serde_json::Value) -> Vec<(String, f64)> {
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["column"].as_str().unwrap().to_string(),
                r["max_abs_diff_vs_a"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_binary_runs_a_bundled_model_with_its_weights_and_the_default_with_random_ones() {
    let doc = run_peers(&["--model", "hello_edge_ds_cnn_s"]);
    assert_eq!(doc["model"], "bundled:hello_edge_ds_cnn_s");
    assert!(
        doc["weights"]
            .as_str()
            .unwrap()
            .contains("hello_edge_ds_cnn_s.safetensors"),
        "{}",
        doc["weights"]
    );
    let diffs = row_diffs(&doc);
    let keys: Vec<&str> = diffs.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(keys, ["a", "b", "b'", "c", "d", "e"]);
    assert!(diffs.iter().all(|d| d.1 <= 1e-5), "{diffs:?}");

    let doc = run_peers(&[]);
    assert_eq!(doc["model"], "configs/ds_cnn_s.toml");
    assert!(doc["weights"]
        .as_str()
        .unwrap()
        .starts_with("random (seed 7"));
    assert!(row_diffs(&doc).iter().all(|d| d.1 <= 1e-5));
}
