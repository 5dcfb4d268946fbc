//! Model files that ask for too much: each gets a bounded error naming the file and the limit,
//! before any large allocation.

use std::fs::File;
use std::path::{Path, PathBuf};

use sepstream_nn::limits::toml_nesting_depth;
use sepstream_nn::LayerKind;
use sepstream_nn::{LayerSpec, ModelLimits, ModelSpec, Network, NnError, Size2, Weights};

const LIMITS: ModelLimits = ModelLimits::DEFAULT;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepstream-limits-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A spec with one input of `width` x `channels` and the given `[[layers]]` TOML.
fn spec_text(width: usize, channels: usize, layers: &str) -> String {
    format!(
        "name = \"big\"\n[input]\nwidth = {width}\nchannels = {channels}\nframe_rate = 100.0\n\
         {layers}"
    )
}

/// The limit error's `what` and `limit`, or a panic describing what came instead.
fn limit_error(result: Result<impl std::fmt::Debug, NnError>) -> (PathBuf, String, u128, u128) {
    match result {
        Err(NnError::LimitExceeded {
            path,
            what,
            value,
            limit,
        }) => {
            assert!(value > limit, "{what}: {value} is not above {limit}");
            (path, what, value, limit)
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn a_spec_with_a_million_layers_is_refused() {
    // As text it is too large to parse at all.
    let layers = "[[layers]]\nkind = \"relu\"\n".repeat(1_000_000);
    let text = spec_text(4, 1, &layers);
    let (_, what, value, limit) = limit_error(ModelSpec::from_toml_str(&text));
    assert!(what.contains("spec size"), "{what}");
    assert_eq!(value, text.len() as u128);
    assert_eq!(limit, LIMITS.max_spec_bytes as u128);

    // Fewer layers than that, but still more than a model may have, fit in the text limit.
    let layers = "[[layers]]\nkind = \"relu\"\n".repeat(LIMITS.max_layers + 1);
    let (_, what, value, _) = limit_error(ModelSpec::from_toml_str(&spec_text(4, 1, &layers)));
    assert!(what.contains("number of layers"), "{what}");
    assert_eq!(value, LIMITS.max_layers as u128 + 1);

    // A spec built in code is checked when the network is built.
    let mut spec = ModelSpec::from_toml_str(&spec_text(4, 1, "[[layers]]\nkind = \"relu\"\n"))
        .expect("a one-layer spec parses");
    spec.layers = vec![LayerSpec::new(LayerKind::Relu); 1_000_000];
    let (_, what, _, _) = limit_error(Network::random(spec, 1));
    assert!(what.contains("number of layers"), "{what}");
}

#[test]
fn a_layer_whose_weights_would_not_fit_in_memory_is_refused_before_allocation() {
    // 60000 x 60 inputs into 60000 units: 216e9 weights, 864 GB as f32.
    let text = spec_text(60_000, 60, "[[layers]]\nkind = \"dense\"\nunits = 60000\n");
    let spec = ModelSpec::from_toml_str(&text).unwrap();
    let (_, what, value, limit) = limit_error(Network::random(spec, 1));
    assert!(
        what.contains("layer dense0") && what.contains("parameters"),
        "{what}"
    );
    // the weight matrix is refused on its own, before the bias
    assert_eq!(value, 60_000 * 60 * 60_000);
    assert_eq!(limit, LIMITS.max_params as u128);
}

#[test]
fn sizes_beyond_any_model_are_refused_with_the_field_named() {
    let huge_kernel = spec_text(
        8,
        1,
        "[[layers]]\nkind = \"depthwise1d\"\nkernel = 1152921504606846976\n",
    );
    let spec = ModelSpec::from_toml_str(&huge_kernel).unwrap();
    let (_, what, value, _) = limit_error(Network::random(spec, 1));
    assert!(what.contains("kernel (time)"), "{what}");
    assert_eq!(value, 1 << 60);

    // A history of (kernel - 1) * dilation frames that overflows without checked arithmetic.
    let mut spec =
        ModelSpec::from_toml_str(&spec_text(8, 1, "[[layers]]\nkind = \"relu\"\n")).unwrap();
    spec.layers = vec![LayerSpec::new(LayerKind::Depthwise1d)
        .kernel(Size2::One(usize::MAX))
        .dilation(usize::MAX)];
    limit_error(Network::random(spec, 1));

    // An output frame too large although its weights are small (one input channel).
    let wide = spec_text(
        60_000,
        1,
        "[[layers]]\nkind = \"pointwise\"\nout_channels = 65536\ngroups = 1\n",
    );
    let (_, what, _, _) = limit_error(Network::random(ModelSpec::from_toml_str(&wide).unwrap(), 1));
    assert!(what.contains("output frame"), "{what}");

    let input = spec_text(1 << 20, 1 << 10, "[[layers]]\nkind = \"relu\"\n");
    let (_, what, _, _) = limit_error(Network::random(
        ModelSpec::from_toml_str(&input).unwrap(),
        1,
    ));
    assert!(what.contains("input"), "{what}");
}

#[test]
fn streaming_state_is_bounded_across_the_whole_model() {
    // Each layer keeps (65536 - 1) * 64 frames of 64 floats: 268M floats, over the state limit.
    let layers = "[[layers]]\nkind = \"depthwise1d\"\nkernel = 65536\ndilation = 64\n";
    let spec = ModelSpec::from_toml_str(&spec_text(64, 1, layers)).unwrap();
    let (_, what, value, limit) = limit_error(Network::random(spec, 1));
    assert!(what.contains("streaming state"), "{what}");
    assert_eq!(value, 65_535 * 64 * 64);
    assert_eq!(limit, LIMITS.max_state_values as u128);

    // Output frames are kept per layer too: 17 layers of the largest frame (2^22 values) are
    // more than 2^26, although each frame alone is allowed and no layer has weights.
    let layers = "[[layers]]\nkind = \"relu\"\n".repeat(17);
    let spec = ModelSpec::from_toml_str(&spec_text(1 << 16, 64, &layers)).unwrap();
    let (_, what, value, _) = limit_error(Network::random(spec, 1));
    assert!(
        what.contains("layer relu16") && what.contains("streaming state"),
        "{what}"
    );
    assert_eq!(value, 17 << 22);
}

#[test]
fn deeply_nested_toml_is_refused_before_it_is_parsed() {
    for depth in [100, 100_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!("{}\n[frontend]\nx = {nested}\n", spec_text(4, 1, ""));
        let (path, what, value, limit) = limit_error(ModelSpec::from_toml_str(&text));
        assert_eq!(path, Path::new("<string>"));
        assert!(what.contains("nesting"), "{what}");
        assert!(value > depth as u128, "{value}");
        assert_eq!(limit, LIMITS.max_toml_nesting as u128);
    }
    let dotted = format!("frontend.{} = 1\n", vec!["a"; 200_000].join("."));
    let (_, what, _, _) = limit_error(ModelSpec::from_toml_str(&dotted));
    assert!(what.contains("nesting"), "{what}");

    // Moderate nesting is left to the parser (here: a valid value in a table the spec keeps).
    let nested = format!("{}1{}", "[".repeat(20), "]".repeat(20));
    let text = format!(
        "{}[frontend]\nx = {nested}\n[[layers]]\nkind = \"relu\"\n",
        spec_text(4, 1, "")
    );
    assert!(toml_nesting_depth(&text) <= LIMITS.max_toml_nesting);
    let spec = ModelSpec::from_toml_str(&text).expect("20 levels of arrays parse");
    assert!(spec.frontend.unwrap().contains_key("x"));
}

#[test]
fn the_reference_specs_are_far_inside_every_limit() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for name in [
        "ds_cnn_s.toml",
        "tc_sep1d.toml",
        "kws.toml",
        "depth_sectors.toml",
    ] {
        let path = configs.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(toml_nesting_depth(&text) <= 8, "{name}");
        Network::random(ModelSpec::load(&path).unwrap(), 1).unwrap();
    }
}

/// Safetensors bytes with a hand-written JSON header and `data` after it.
fn safetensors_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn a_safetensors_header_that_asks_for_more_bytes_than_the_file_has_is_an_error() {
    let origin = Path::new("huge.safetensors");
    let huge = safetensors_with_header(
        r#"{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#,
        &[0; 16],
    );
    let overflowing = safetensors_with_header(
        r#"{"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    let mut header_length_too_large = u64::MAX.to_le_bytes().to_vec();
    header_length_too_large.extend_from_slice(b"{}");
    for bytes in [huge, overflowing, header_length_too_large] {
        match Weights::from_safetensors(&bytes, origin) {
            Err(NnError::Weights { path, message }) => {
                assert_eq!(path, origin);
                assert!(!message.is_empty());
            }
            other => panic!("expected a safetensors error, got {other:?}"),
        }
    }
}

#[test]
fn files_larger_than_any_model_are_refused_before_they_are_read() {
    let dir = scratch_dir("files");
    // Sparse files: their size is what is checked, so nothing is written or read.
    let weights = dir.join("big.safetensors");
    File::create(&weights)
        .unwrap()
        .set_len(LIMITS.max_weights_bytes + 1)
        .unwrap();
    let (path, what, _, _) = limit_error(Weights::load(&weights));
    assert_eq!(path, weights);
    assert!(what.contains("weights file size"), "{what}");

    let spec = dir.join("big.toml");
    File::create(&spec)
        .unwrap()
        .set_len(LIMITS.max_spec_bytes as u64 + 1)
        .unwrap();
    let (path, what, _, _) = limit_error(ModelSpec::load(&spec));
    assert_eq!(path, spec);
    assert!(what.contains("spec size"), "{what}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_a_spec_file_names_it_in_the_limit_error() {
    let dir = scratch_dir("named");
    let spec = dir.join("wide.toml");
    // 65536 x 65536 weights in one dense layer; the weights file has none.
    let text = format!(
        "weights = \"empty.safetensors\"\n{}",
        spec_text(65_536, 1, "[[layers]]\nkind = \"dense\"\nunits = 65536\n")
    );
    std::fs::write(&spec, text).unwrap();
    Weights::default()
        .save(&dir.join("empty.safetensors"))
        .unwrap();
    let err = Network::load(&spec).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&spec.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("layer dense0") && message.contains("limit"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
