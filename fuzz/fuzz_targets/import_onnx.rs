//! Fuzz target: the ONNX importer (a ModelProto protobuf) on arbitrary bytes, then the imported model built and stepped.
#![no_main]

mod import_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| import_common::import_and_step(data, "fuzz.onnx"));
