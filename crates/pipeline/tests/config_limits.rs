//! Pipeline configs nested far deeper than any config: a clear error, never a stack overflow.
//! (The `toml` parser itself stops at a fixed recursion depth; these pin that down for arrays,
//! inline tables, dotted keys and table headers.)

use sepstream_pipeline::{PipelineConfig, PipelineError};

#[test]
fn deeply_nested_toml_is_an_error_not_a_stack_overflow() {
    let deep = |depth: usize| {
        [
            format!("x = {}1{}\n", "[".repeat(depth), "]".repeat(depth)),
            format!("x = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth)),
            format!("{} = 1\n", vec!["a"; depth].join(".")),
            format!("[{}]\n", vec!["a"; depth].join(".")),
        ]
    };
    for text in [200, 200_000].into_iter().flat_map(deep) {
        match PipelineConfig::from_toml_str(&text, "deep.toml") {
            Err(PipelineError::Config { origin, reason }) => {
                assert_eq!(origin, "deep.toml");
                assert!(!reason.is_empty());
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn the_shipped_config_still_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/pipeline.toml");
    PipelineConfig::load(&path).unwrap();
}
