//! Fuzz target: a model spec (TOML) and safetensors bytes, loaded and built from memory.
//!
//! Input layout: a little-endian u16 `n`, then `n` bytes of spec text, then the safetensors
//! bytes (fuzz/make_seeds.py writes seeds in this layout). With no safetensors bytes at all the
//! network is built with random weights, so that specs alone exercise the builder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepstream_nn::{ModelSpec, Network, Weights};

/// Networks whose streaming state is larger than this are built but not stepped (stepping
/// would only measure memory bandwidth).
const MAX_STEPPED_STATE_BYTES: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (spec_bytes, weight_bytes) = data[2..].split_at(n);
    let Ok(text) = std::str::from_utf8(spec_bytes) else {
        return;
    };
    let weights = Weights::from_safetensors(weight_bytes, std::path::Path::new("<fuzz>"));
    let Ok(spec) = ModelSpec::from_toml_str(text) else {
        return;
    };
    // Round trip of what parsed: the text written back must parse to the same spec.
    let again = ModelSpec::from_toml_str(&spec.to_toml_string()).expect("a written spec parses");
    assert_eq!(again, spec);
    let built = if weight_bytes.is_empty() {
        Network::random(spec, 1)
    } else {
        let Ok(weights) = weights else {
            return;
        };
        Network::from_spec_and_tensors(spec, &weights)
    };
    let Ok(network) = built else {
        return;
    };
    if network.state_bytes() > MAX_STEPPED_STATE_BYTES {
        return;
    }
    let mut state = network.new_state();
    let frame = vec![0.5f32; network.input_shape().len()];
    for _ in 0..3 {
        if let Some(out) = network.step(&mut state, &frame) {
            assert_eq!(out.len(), network.output_shape().len());
        }
    }
});
