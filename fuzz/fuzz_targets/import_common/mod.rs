//! What both importer targets check: an import either fails with an error or gives a model that round-trips through its files and steps.

use std::path::Path;

use sepstream_import::{import_bytes, ImportOptions};
use sepstream_nn::{ModelSpec, Network, Weights};

/// Imported networks whose streaming state is larger than this are built but not stepped.
const MAX_STEPPED_STATE_BYTES: usize = 16 << 20;

/// Imports `data` as the file `name` (its extension picks the importer); a model that imports
/// must build again from its written spec and safetensors and give outputs of the spec's width.
pub fn import_and_step(data: &[u8], name: &str) {
    let opts = ImportOptions {
        labels: Some(Vec::new()),
        ..ImportOptions::default()
    };
    let Ok(imported) = import_bytes(data, Path::new(name), &opts) else {
        return;
    };
    let spec = ModelSpec::from_toml_str(&imported.spec.to_toml_string())
        .expect("an imported spec parses once written");
    let weights = Weights::from_safetensors(&imported.weights.to_safetensors(), Path::new("<fuzz>"))
        .expect("imported weights load once written");
    let network = Network::from_spec_and_tensors(spec, &weights)
        .expect("an imported model builds from its written spec and weights");
    if network.state_bytes() > MAX_STEPPED_STATE_BYTES {
        return;
    }
    let mut state = network.new_state();
    let frame = vec![0.25f32; network.input_shape().len()];
    for _ in 0..3 {
        if let Some(out) = network.step(&mut state, &frame) {
            assert_eq!(out.len(), network.output_shape().len());
        }
    }
}
