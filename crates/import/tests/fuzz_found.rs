//! Inputs the importer fuzz targets (fuzz/fuzz_targets/import_*.rs) found crashing or hanging,
//! kept as regression cases: each is now an error naming what is wrong.

use std::path::PathBuf;

use sepstream_import::{import_path, ImportOptions};

fn case(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_found")
        .join(name)
}

/// The ONNX golden model mutated so that a convolution's weights have a dimension of 0: the
/// folding of a following scale divided by a zero row length and panicked.
#[test]
fn onnx_weights_of_size_zero_are_an_error() {
    let err = import_path(&case("zero_size_weights.onnx"), &ImportOptions::default())
        .expect_err("a model with empty weights must not import");
    assert!(err.to_string().contains("no values"), "{err}");
}
