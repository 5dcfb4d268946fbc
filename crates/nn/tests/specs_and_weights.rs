//! Loading specs and weights: the reference specs, round trips, and every kind of bad input.

use std::path::{Path, PathBuf};

use sepstream_nn::{ModelSpec, Network, NnError, Weights};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

const SMALL: &str = r#"
name = "small"
[input]
width = 5
channels = 2
frame_rate = 100.0
[[layers]]
name = "sep"
kind = "separable2d"
out_channels = 3
kernel = [3, 3]
dilation = 2
activation = "relu"
[[layers]]
name = "fc"
kind = "dense"
units = 4
"#;

fn small() -> ModelSpec {
    ModelSpec::from_toml_str(SMALL).unwrap()
}

#[test]
fn reference_specs_build_with_the_shapes_and_state_they_promise() {
    let ds = Network::random(
        ModelSpec::load(&configs().join("ds_cnn_s.toml")).unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(ds.input_shape().len(), 10);
    assert_eq!(ds.output_shape().len(), 12);
    assert_eq!(ds.time_stride(), 2);
    // conv1: (10-1) frames of 10x1; four separable: (3-1) frames of 5x64; pool: 24 frames of 64
    let floats = 9 * 10 + 4 * (2 * 5 * 64) + 24 * 64;
    assert_eq!(ds.state_bytes(), floats * 4);

    let tc = Network::random(
        ModelSpec::load(&configs().join("tc_sep1d.toml")).unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(tc.input_shape().len(), 40);
    assert_eq!(tc.output_shape().len(), 12);
    let floats = 2 * 40 + (8 + 20 + 24 + 14) * 64 + 49 * 64;
    assert_eq!(tc.state_bytes(), floats * 4);
}

#[test]
fn weights_round_trip_through_safetensors_and_spec_files() {
    let dir = std::env::temp_dir().join(format!("sepstream-nn-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let net = Network::random(small(), 3).unwrap();
    net.save_safetensors(&dir.join("small.safetensors"))
        .unwrap();
    let mut spec = small();
    spec.weights = Some("small.safetensors".into());
    spec.save(&dir.join("small.toml")).unwrap();

    let back = Network::load(&dir.join("small.toml")).unwrap();
    let input: Vec<f32> = (0..7 * 10).map(|i| (i as f32).cos()).collect();
    assert_eq!(back.forward(&input, 7), net.forward(&input, 7));
    assert_eq!(back.spec().layers, net.spec().layers);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bundle_names_its_weights_relative_to_the_spec_and_is_never_half_written() {
    let dir = std::env::temp_dir().join(format!("sepstream-nn-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    let net = Network::random(small(), 5).unwrap();
    let (spec_path, weights_path) = (
        dir.join("specs/model.toml"),
        dir.join("assets/model.safetensors"),
    );
    let written = small()
        .save_bundle(&net.weights(), &spec_path, &weights_path)
        .unwrap();
    assert_eq!(
        written.weights.as_deref(),
        Some(Path::new("../assets/model.safetensors"))
    );
    let back = Network::load(&spec_path).unwrap();
    let input: Vec<f32> = (0..7 * 10).map(|i| (i as f32).sin()).collect();
    assert_eq!(back.forward(&input, 7), net.forward(&input, 7));

    // weights that do not fit the spec: an error naming the tensor, and no file at all
    let mut wrong = net.weights();
    wrong.tensors.remove("sep.pointwise.bias");
    let (spec2, weights2) = (
        dir.join("specs/bad.toml"),
        dir.join("assets/bad.safetensors"),
    );
    let err = small().save_bundle(&wrong, &spec2, &weights2).unwrap_err();
    assert!(err.to_string().contains("sep.pointwise.bias"), "{err}");
    assert!(!spec2.exists() && !weights2.exists());
    // a folder that cannot be written: an error naming the file, nothing left behind
    let blocked = dir.join("specs/model.toml/inside.toml");
    let err = small()
        .save_bundle(&net.weights(), &blocked, &dir.join("assets/x.safetensors"))
        .unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err}");
    assert!(!dir.join("assets/x.safetensors").exists());
    assert!(!dir.join("assets/x.safetensors.partial").exists());
    std::fs::remove_dir_all(&dir).ok();
}

fn weights_of(net: &Network) -> Weights {
    net.weights()
}

#[test]
fn missing_tensor_names_layer_and_tensor() {
    let mut w = weights_of(&Network::random(small(), 1).unwrap());
    w.tensors.remove("sep.pointwise.bias");
    let err = Network::from_spec_and_tensors(small(), &w).unwrap_err();
    assert!(
        matches!(&err, NnError::MissingTensor { layer, tensor } if layer == "sep" && tensor == "sep.pointwise.bias"),
        "{err}"
    );
    assert!(err.to_string().contains("sep.pointwise.bias"));
}

#[test]
fn wrong_shape_reports_expected_and_actual() {
    let mut w = weights_of(&Network::random(small(), 1).unwrap());
    w.insert("fc.weight", vec![4, 14], vec![0.0; 56]);
    let err = Network::from_spec_and_tensors(small(), &w).unwrap_err();
    match &err {
        NnError::WrongShape {
            layer,
            tensor,
            expected,
            actual,
        } => {
            assert_eq!(layer, "fc");
            assert_eq!(tensor, "fc.weight");
            assert_eq!(expected, &vec![4, 15]);
            assert_eq!(actual, &vec![4, 14]);
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn unused_tensor_is_an_error() {
    let mut w = weights_of(&Network::random(small(), 1).unwrap());
    w.insert("extra.weight", vec![1], vec![0.0]);
    let err = Network::from_spec_and_tensors(small(), &w).unwrap_err();
    assert!(matches!(err, NnError::UnusedTensor { ref tensor } if tensor == "extra.weight"));
}

#[test]
fn corrupt_weights_file_is_a_typed_error() {
    let err = Network::from_spec_and_weights(small(), b"definitely not safetensors").unwrap_err();
    assert!(matches!(err, NnError::Weights { .. }), "{err}");
}

#[test]
fn unknown_layer_kind_is_named() {
    let text = SMALL.replace("kind = \"dense\"", "kind = \"lstm\"");
    // the kind is typed, so the spec does not parse
    let err = ModelSpec::from_toml_str(&text).unwrap_err();
    assert!(
        matches!(&err, NnError::UnknownLayerKind { layer, kind, .. } if layer == "fc" && kind == "lstm"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    for (from, to) in [
        ("name = \"small\"", "name = \"small\"\nsize = 3"),
        ("frame_rate = 100.0", "frame_rate = 100.0\nrate = 3"),
        ("units = 4", "units = 4\nunits_typo = 4"),
    ] {
        let err = ModelSpec::from_toml_str(&SMALL.replace(from, to)).unwrap_err();
        assert!(matches!(err, NnError::SpecSyntax { .. }), "{err}");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}

#[test]
fn a_field_the_kind_does_not_take_is_an_error() {
    let text = SMALL.replace("units = 4", "units = 4\nkernel = 3");
    let err = Network::random(ModelSpec::from_toml_str(&text).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("takes no `kernel`"), "{err}");
}

#[test]
fn zero_channels_kernel_or_stride_are_rejected() {
    for (from, to, what) in [
        ("channels = 2", "channels = 0", "input width and channels"),
        ("out_channels = 3", "out_channels = 0", "out_channels"),
        ("kernel = [3, 3]", "kernel = [0, 3]", "kernel (time)"),
        (
            "kernel = [3, 3]",
            "kernel = [3, 3]\nstride = [1, 0]",
            "stride (width)",
        ),
        ("dilation = 2", "dilation = 0", "dilation"),
        ("units = 4", "units = 0", "units"),
    ] {
        let spec = ModelSpec::from_toml_str(&SMALL.replace(from, to)).unwrap();
        let err = Network::random(spec, 1).unwrap_err();
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
}

#[test]
fn missing_spec_file_names_the_path() {
    let err = Network::load(Path::new("/nonexistent/model.toml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.toml"), "{err}");
}

#[test]
fn labels_must_match_the_output() {
    let text = format!("labels = [\"a\", \"b\"]\n{SMALL}");
    let err = Network::random(ModelSpec::from_toml_str(&text).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("2 labels"), "{err}");
}

#[test]
fn flatten_folds_the_width_into_channels_and_takes_no_fields() {
    let text = r#"
name = "flat"
[input]
width = 5
channels = 3
frame_rate = 50.0
[[layers]]
name = "c"
kind = "conv2d"
out_channels = 2
kernel = [2, 3]
stride = [1, 2]
[[layers]]
name = "flat"
kind = "flatten"
[[layers]]
name = "p"
kind = "pointwise"
out_channels = 4
"#;
    let net = Network::random(ModelSpec::from_toml_str(text).unwrap(), 1).unwrap();
    let flat = &net.layers()[1];
    assert_eq!((flat.input().width, flat.input().channels), (3, 2));
    assert_eq!((flat.output().width, flat.output().channels), (1, 6));
    assert_eq!(flat.params(), 0);
    assert_eq!(net.layers()[2].params(), 6 * 4 + 4);
    let bad = text.replace("kind = \"flatten\"", "kind = \"flatten\"\nframes = 2");
    let err = Network::random(ModelSpec::from_toml_str(&bad).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("takes no `frames`"), "{err}");
}

#[test]
fn groups_split_the_pointwise_mixing_and_are_checked() {
    let text = r#"
name = "grouped"
[input]
width = 1
channels = 6
frame_rate = 100.0
[[layers]]
name = "sep"
kind = "separable1d"
out_channels = 4
kernel = 3
groups = 2
[[layers]]
name = "p"
kind = "pointwise"
out_channels = 6
groups = 2
"#;
    let net = Network::random(ModelSpec::from_toml_str(text).unwrap(), 1).unwrap();
    // depthwise 6*3 + 6, pointwise 4 x (6/2) + 4; then 6 x (4/2) + 6.
    assert_eq!(net.layers()[0].params(), 6 * 3 + 6 + 4 * 3 + 4);
    assert_eq!(net.layers()[1].params(), 6 * 2 + 6);
    let w = net.weights();
    assert_eq!(w.tensors["sep.pointwise.weight"].shape, vec![4, 3]);
    assert_eq!(w.tensors["p.weight"].shape, vec![6, 2]);
    // The weights file round-trips with the grouped shapes.
    let again = Network::from_spec_and_tensors(net.spec().clone(), &w).unwrap();
    let x: Vec<f32> = (0..6 * 5).map(|i| (i as f32 * 0.3).cos()).collect();
    assert_eq!(again.forward(&x, 5), net.forward(&x, 5));

    // Groups that do not divide a channel count name the layer and both counts.
    let bad = text.replace(
        "out_channels = 6\ngroups = 2",
        "out_channels = 6\ngroups = 3",
    );
    let err = Network::random(ModelSpec::from_toml_str(&bad).unwrap(), 1).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains('p') && msg.contains("groups = 3") && msg.contains("4 input"),
        "{msg}"
    );
    let zero = text.replace("groups = 2\n[[layers]]", "groups = 0\n[[layers]]");
    let err = Network::random(ModelSpec::from_toml_str(&zero).unwrap(), 1).unwrap_err();
    assert!(
        err.to_string().contains("groups must be at least 1"),
        "{err}"
    );
    // Weights of the ungrouped shape are refused with the expected one.
    let mut full = w.clone();
    full.insert("p.weight", vec![6, 4], vec![0.0; 24]);
    let err = Network::from_spec_and_tensors(net.spec().clone(), &full).unwrap_err();
    assert!(err.to_string().contains("[6, 4], expected [6, 2]"), "{err}");
    // Kinds without channel mixing take no groups.
    let dense = SMALL.replace("units = 4", "units = 4\ngroups = 2");
    let err = Network::random(ModelSpec::from_toml_str(&dense).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("takes no `groups`"), "{err}");
}

#[test]
fn bundled_models_load_and_equal_their_files_in_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for m in sepstream_nn::bundled::BUNDLED {
        let bundled = m.network().expect("a bundled model loads");
        let spec = m.spec().unwrap();
        let weights = spec.weights.clone().expect("the spec names its weights");
        let on_disk = root.join("configs").join(&weights);
        assert_eq!(std::fs::read(&on_disk).unwrap(), m.weights, "{}", m.name);
        let shape = bundled.input_shape();
        let mut st = bundled.new_state();
        let frame = vec![0.1f32; shape.width * shape.channels];
        assert!(
            (0..200).any(|_| bundled.step(&mut st, &frame).is_some()),
            "{}",
            m.name
        );
        assert!(!m.licence.is_empty() && !m.measured.is_empty() && !m.source.is_empty());
    }
    assert!(sepstream_nn::bundled::find(sepstream_nn::bundled::DEFAULT_KEYWORD_MODEL).is_some());
    let err = sepstream_nn::bundled::ModelSource::resolve(std::path::Path::new("no/such.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no/such.toml") && err.contains("kws"), "{err}");
}
