//! `sepstream eval` with the shipped model on ../shared/data: the per-clip report is consistent
//! (the confusion matrix adds up to the clip count and its diagonal to the accuracy; text and JSON
//! agree), the stream report is well formed, and a missing folder is an error that names it.

use sepstream_testkit::{repo_root, skip};
use std::process::{Command, Output};

/// The shipped model and ../shared/data/speech_commands are there; else says why the test skips.
fn ready() -> bool {
    if !repo_root().join("configs/kws.toml").is_file() {
        skip("no shipped model configs/kws.toml");
        return false;
    }
    if !sepstream_testkit::shared_data()
        .join("speech_commands")
        .is_dir()
    {
        skip("../shared/data/speech_commands not found");
        return false;
    }
    true
}

fn eval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .current_dir(repo_root())
        .arg("eval")
        .args(["--data", "../shared/data/speech_commands"])
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn clip_report_adds_up_and_text_matches_json_or_skip_without_shared() {
    if !ready() {
        return;
    }
    let out = eval(&["--limit", "240", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let labels = r["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 12);
    let clips = r["clips"].as_u64().unwrap();
    assert!(clips >= 200, "{clips} clips evaluated");
    let conf: Vec<Vec<u64>> = r["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    let total: u64 = conf.iter().flatten().sum();
    let diag: u64 = (0..conf.len()).map(|i| conf[i][i]).sum();
    assert_eq!(total, clips);
    let acc = r["accuracy"].as_f64().unwrap();
    assert!((acc - diag as f64 / clips as f64).abs() < 1e-9);
    // Better than chance by far: the trained model, run by the streaming engine.
    assert!(acc > 0.5, "accuracy {acc}");
    for (i, p) in r["precision"].as_array().unwrap().iter().enumerate() {
        let col: u64 = conf.iter().map(|row| row[i]).sum();
        if col > 0 {
            assert!((p.as_f64().unwrap() - conf[i][i] as f64 / col as f64).abs() < 1e-9);
        }
    }
    let text = eval(&["--limit", "240"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with(&format!("accuracy: {acc:.4}")),
        "{text}"
    );
    assert!(text.contains("confusion"), "{text}");
}

#[test]
fn clip_tail_comes_from_the_spec_and_can_be_overridden_or_skip_without_shared() {
    if !ready() {
        return;
    }
    let json = |args: &[&str]| -> serde_json::Value {
        let out = eval(&[&["--limit", "120", "--json"], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    };
    let spec = sepstream_nn::ModelSpec::load(&repo_root().join("configs/kws.toml")).unwrap();
    let spec_tail = spec.decision.as_ref().and_then(|d| d.get("clip_tail"));
    let spec_tail = spec_tail.and_then(|v| v.as_float()).unwrap_or(0.0);
    assert_eq!(json(&[])["clip_tail"].as_f64(), Some(spec_tail));
    let at_end = json(&["--clip-tail", "0"]);
    assert_eq!(at_end["clip_tail"].as_f64(), Some(0.0));
    assert_eq!(at_end["clips"].as_u64(), json(&[])["clips"].as_u64());
    for bad in [
        &["--clip-tail", "3"][..],
        &["--clip-tail", "0.2", "--stream"],
    ] {
        let out = eval(bad);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("clip-tail"), "{bad:?}: {err}");
    }
}

#[test]
fn stream_report_is_well_formed_or_skip_without_shared() {
    if !ready() {
        return;
    }
    let out = eval(&["--stream", "--limit", "120", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let keywords = r["keywords"].as_u64().unwrap();
    let detected = r["detected"].as_u64().unwrap();
    assert!(keywords >= 60, "{keywords} keywords in the stream");
    assert!(detected <= keywords);
    assert!(detected > keywords / 3, "{detected} of {keywords} detected");
    let hours = r["hours"].as_f64().unwrap();
    assert!(hours > 0.0);
    let fa = r["false_accepts"].as_u64().unwrap() as f64;
    assert!((r["false_accepts_per_hour"].as_f64().unwrap() - fa / hours).abs() < 1e-6);
    let delay = r["median_delay"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&delay), "median delay {delay}");
}

#[test]
fn missing_folder_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .current_dir(repo_root())
        .args(["eval", "--data", "/nonexistent/sepstream-data"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/sepstream-data"), "{err}");
}
