//! `sepstream cost`, `sepstream inspect` and `sepstream factorize` through the binary: the seed's
//! printed figures, the reference DS-CNN's table, and a factorization written and reloaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sepstream_nn::compose::khatri_rao;
use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, InputSpec, LayerSpec, ModelSpec, Network, Size2};

fn sepstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .args(args)
        .output()
        .expect("runs the sepstream binary")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn config(name: &str) -> String {
    sepstream_testkit::config_path(name)
        .to_string_lossy()
        .into_owned()
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepstream-inspect-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn cost_prints_the_seed_example_ratio_and_reduction() {
    let out = stdout(&sepstream(&[
        "cost", "--cin", "192", "--cout", "384", "--k", "3",
    ]));
    assert!(out.contains("ratio 0.1137"), "{out}");
    assert!(out.contains("reduction 88.6%"), "{out}");
    assert!(out.contains("663,552"), "standard parameters: {out}");
    assert!(out.contains("75,456"), "separable parameters: {out}");
    assert!(out.contains("75,264"), "degrees of freedom: {out}");
}

#[test]
fn cost_ratio_does_not_change_with_h_w_or_cin() {
    for (cin, h, w) in [
        ("192", "1", "1"),
        ("192", "56", "56"),
        ("3", "7", "13"),
        ("1000", "2", "1"),
    ] {
        let out = stdout(&sepstream(&[
            "cost", "--cin", cin, "--cout", "384", "--k", "3", "--h", h, "--w", w,
        ]));
        assert!(out.contains("ratio 0.1137"), "{cin} {h} {w}: {out}");
        assert!(out.contains("reduction 88.6%"), "{out}");
    }
    let json = stdout(&sepstream(&[
        "cost", "--cin", "192", "--cout", "384", "--k", "3", "--h", "56", "--w", "56", "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["standard_flops"], 2 * 56 * 56 * 663_552u64);
    assert_eq!(v["separable_flops"], 2 * 56 * 56 * 75_456u64);
    let bad = sepstream(&["cost", "--cin", "0", "--cout", "4", "--k", "3"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--cin must be at least 1"));
}

#[test]
fn inspect_ds_cnn_s_prints_the_table_and_totals() {
    let out = stdout(&sepstream(&["inspect", &config("ds_cnn_s.toml")]));
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in\n{out}"))
            .to_string()
    };
    let ds1 = line("ds1");
    assert!(
        ds1.contains("separable2d") && ds1.contains("4,800"),
        "{ds1}"
    );
    assert!(ds1.contains("46,720"), "FLOPs per frame: {ds1}");
    assert!(ds1.contains("ratio 0.1267"), "{ds1}");
    assert!(line("conv1").contains("25,600"), "{out}");
    assert!(out.contains("total: 22,604 params"), "{out}");
    assert!(
        out.contains("receptive field: 74 frames (1480.0 ms); delay: 0 frames (0.0 ms)"),
        "{out}"
    );

    let json = stdout(&sepstream(&["inspect", "--json", &config("ds_cnn_s.toml")]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["params"], 22_604);
    assert_eq!(v["layers"].as_array().unwrap().len(), 8);
    assert_eq!(v["layers"][1]["dof"], 4_672 - 64);
    assert_eq!(v["receptive_field_frames"], 74);

    let missing = sepstream(&["inspect", "/nonexistent/spec.toml"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/spec.toml"));
}

fn write_model(dir: &Path, spec: &ModelSpec, weights: &sepstream_nn::Weights) -> PathBuf {
    let mut spec = spec.clone();
    spec.weights = Some("in.safetensors".into());
    weights.save(&dir.join("in.safetensors")).unwrap();
    let path = dir.join("in.toml");
    spec.save(&path).unwrap();
    path
}

fn spec_with(input: InputSpec, layers: Vec<LayerSpec>) -> ModelSpec {
    ModelSpec {
        name: "t".into(),
        description: None,
        weights: None,
        provenance: None,
        labels: vec![],
        input,
        frontend: None,
        decision: None,
        layers,
    }
}

#[test]
fn factorize_writes_a_model_that_loads_and_computes_the_same_for_a_separable_kernel() {
    let dir = temp_dir("exact");
    let spec = spec_with(
        InputSpec {
            width: 8,
            channels: 3,
            frame_rate: 50.0,
        },
        vec![
            LayerSpec::new(LayerKind::Conv2d)
                .named("conv")
                .out_channels(16)
                .kernel(Size2::Two([3, 3]))
                .activation(Activation::Relu),
            LayerSpec::new(LayerKind::Dense).named("fc").units(4),
        ],
    );
    let net = Network::random(spec.clone(), 1).unwrap();
    let mut weights = net.weights();
    let p: Vec<f32> = (0..16 * 3)
        .map(|k| ((k * 37) % 17) as f32 / 8.0 - 1.0)
        .collect();
    let d: Vec<f32> = (0..3 * 9)
        .map(|k| ((k * 11) % 7) as f32 / 3.0 - 1.0)
        .collect();
    weights.insert(
        "conv.weight",
        vec![16, 3, 3, 3],
        khatri_rao(&p, &d, 16, 3, 9),
    );
    let original = Network::from_spec_and_tensors(spec.clone(), &weights).unwrap();
    let spec_path = write_model(&dir, &spec, &weights);
    let out_path = dir.join("out.toml");
    let out = stdout(&sepstream(&[
        "factorize",
        "--spec",
        spec_path.to_str().unwrap(),
        "--layer",
        "conv",
        "--out",
        out_path.to_str().unwrap(),
    ]));
    assert!(out.contains("relative Frobenius error 0.000000"), "{out}");
    assert!(out.contains("conv_dw + conv_pw"), "{out}");
    // conv: 16*3*9 + 16 = 448 params; depthwise 27 + 3, pointwise 48 + 16 = 94.
    assert!(
        out.contains("layer parameters: 448 -> 94 (saved 79.0%)"),
        "{out}"
    );
    assert!(dir.join("out.safetensors").exists());

    let factorized = Network::load(&out_path).unwrap();
    let x: Vec<f32> = (0..12 * 24)
        .map(|k| ((k * 13) % 23) as f32 / 11.0 - 1.0)
        .collect();
    let (a, b) = (factorized.forward(&x, 12), original.forward(&x, 12));
    assert_eq!(a.len(), b.len());
    sepstream_testkit::assert_close(&a, &b, 1e-5, "factorized against original");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn factorize_reports_the_unavoidable_error_of_two_shifts_and_rejects_bad_layers() {
    let dir = temp_dir("shifts");
    let spec = spec_with(
        InputSpec {
            width: 1,
            channels: 1,
            frame_rate: 100.0,
        },
        vec![LayerSpec::new(LayerKind::Conv1d)
            .named("shift")
            .out_channels(2)
            .kernel(Size2::One(4))],
    );
    let mut weights = sepstream_nn::Weights::default();
    // output 0 = input delayed by 1 frame, output 1 = input delayed by 3 frames
    let mut w = vec![0.0f32; 8];
    w[4 - 1 - 1] = 1.0;
    w[4 + 4 - 1 - 3] = 1.0;
    weights.insert("shift.weight", vec![2, 1, 4], w);
    weights.insert("shift.bias", vec![2], vec![0.0, 0.0]);
    let spec_path = write_model(&dir, &spec, &weights);
    let out_path = dir.join("sep.toml");
    let weights_out = dir.join("elsewhere.safetensors");
    let out = stdout(&sepstream(&[
        "factorize",
        "--spec",
        spec_path.to_str().unwrap(),
        "--weights",
        dir.join("in.safetensors").to_str().unwrap(),
        "--layer",
        "shift",
        "--out",
        out_path.to_str().unwrap(),
        "--out-weights",
        weights_out.to_str().unwrap(),
    ]));
    assert!(out.contains("relative Frobenius error 0.707107"), "{out}");
    assert!(out.contains("[1.0000 1.0000]"), "singular values: {out}");
    let written = ModelSpec::load(&out_path).unwrap();
    assert_eq!(
        written.weights,
        Some(PathBuf::from("elsewhere.safetensors"))
    );
    assert_eq!(written.layers[0].kind, "separable1d");
    assert!(Network::load(&out_path).is_ok());

    let not_conv = sepstream(&[
        "factorize",
        "--spec",
        out_path.to_str().unwrap(),
        "--layer",
        "shift",
        "--out",
        dir.join("x.toml").to_str().unwrap(),
    ]);
    assert!(!not_conv.status.success());
    let err = String::from_utf8_lossy(&not_conv.stderr);
    assert!(err.contains("not a standard convolution"), "{err}");
    let unknown = sepstream(&[
        "factorize",
        "--spec",
        spec_path.to_str().unwrap(),
        "--layer",
        "nope",
        "--out",
        dir.join("x.toml").to_str().unwrap(),
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no layer named `nope`"));
    assert!(!dir.join("x.toml").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
