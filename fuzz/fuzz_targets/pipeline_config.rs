//! Fuzz target: pipeline config TOML parsing and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepstream_pipeline::config::PipelineConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = PipelineConfig::from_toml_str(text, "<fuzz>") {
        // Looking up any edge or stage of a valid config answers.
        let _ = config.edge("capture");
        let _ = config.stage("inference");
    }
});
