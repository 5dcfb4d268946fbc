//! `sepstream import` from the command line: a published TensorFlow graph becomes a spec +
//! weights that stream like the bundled copy of the same model; a file that is no model is an
//! error naming it, and nothing is written.

use sepstream_testkit::repo_root;
use std::path::PathBuf;
use std::process::{Command, Output};

fn sepstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .args(args)
        .output()
        .expect("runs")
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepstream-import-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn an_imported_graph_streams_like_its_bundled_copy_or_skip_without_shared() {
    let pb = repo_root().join("../shared/models/hello_edge/DS_CNN_S.pb");
    if !pb.is_file() {
        sepstream_testkit::skip("../shared/models/hello_edge/DS_CNN_S.pb not found");
        return;
    }
    let dir = scratch();
    let (spec, weights) = (dir.join("ds_cnn_s.toml"), dir.join("ds_cnn_s.safetensors"));
    let out = sepstream(&[
        "import",
        pb.to_str().unwrap(),
        "--out",
        spec.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(spec.is_file() && weights.is_file());
    let sample = repo_root().join("assets/sample_keywords.wav");
    let events = |model: &str| {
        let out = sepstream(&["wav", "--json", "--model", model, sample.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let imported = events(spec.to_str().unwrap());
    assert!(!imported.is_empty());
    assert_eq!(imported, events("hello_edge_ds_cnn_s"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_file_that_is_no_model_is_named_and_nothing_is_written() {
    let dir = scratch();
    let bogus = dir.join("bogus.pb");
    std::fs::write(&bogus, b"\x08\x96\x01 this is not a graph").unwrap();
    let spec = dir.join("never.toml");
    let out = sepstream(&[
        "import",
        bogus.to_str().unwrap(),
        "--out",
        spec.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus.pb"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!spec.exists());
    assert!(!dir.join("../assets/never.safetensors").exists());
}

#[test]
fn weights_go_to_the_assets_folder_of_a_project_and_beside_the_spec_elsewhere() {
    let onnx = repo_root().join("crates/import/tests/golden/small_sep_cnn.onnx");
    let dir = std::env::temp_dir().join(format!("sepstream-import-layouts-{}", std::process::id()));
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("configs")).unwrap();
    std::fs::create_dir_all(project.join("assets")).unwrap();
    std::fs::create_dir_all(dir.join("loose")).unwrap();
    for (spec, weights) in [
        (
            project.join("configs/sep.toml"),
            project.join("assets/sep.safetensors"),
        ),
        (
            dir.join("loose/sep.toml"),
            dir.join("loose/sep.safetensors"),
        ),
    ] {
        let out = sepstream(&[
            "import",
            onnx.to_str().unwrap(),
            "--out",
            spec.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(weights.is_file(), "no {}", weights.display());
        // The written spec names its weights relative to itself.
        let net = sepstream_nn::Network::load(&spec)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
        assert!(net.layers().iter().map(|l| l.params()).sum::<usize>() > 0);
    }
    std::fs::remove_dir_all(&dir).ok();
}
