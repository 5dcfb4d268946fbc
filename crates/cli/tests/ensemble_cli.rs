//! `sepstream ensemble`: the shipped model merged with itself is the same model (the mean of two
//! equal members), so `wav` gives the same events; members that do not fit, or are missing, are
//! refused with a message that names them and a non-zero exit.

use sepstream_testkit::repo_root;
use std::process::{Command, Output};

fn sepstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .current_dir(repo_root())
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn a_model_merged_with_itself_gives_the_same_events() {
    let dir = std::env::temp_dir().join(format!("sepstream_ensemble_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("twice.toml");
    let out_s = out.to_str().unwrap();
    let r = sepstream(&[
        "ensemble",
        "configs/kws.toml",
        "configs/kws.toml",
        "--out",
        out_s,
        "--weights",
        "twice.safetensors",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(dir.join("twice.safetensors").is_file());
    let spec = std::fs::read_to_string(&out).unwrap();
    assert!(spec.contains("`sepstream ensemble` of 2 members"), "{spec}");

    let events = |model: &str| {
        let r = sepstream(&["wav", "--model", model, "assets/sample_keywords.wav"]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8(r.stdout).unwrap()
    };
    let shipped = events("configs/kws.toml");
    assert_eq!(shipped.lines().count(), 4, "{shipped}");
    assert_eq!(events(out_s), shipped);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn members_that_do_not_fit_or_are_missing_are_named() {
    let out = std::env::temp_dir().join(format!(
        "sepstream_ensemble_bad_{}.toml",
        std::process::id()
    ));
    let out_s = out.to_str().unwrap();
    let r = sepstream(&[
        "ensemble",
        "configs/kws.toml",
        "configs/depth_sectors.toml",
        "--out",
        out_s,
    ]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("member 2") && err.contains("architecture"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written for a refused merge");

    let r = sepstream(&[
        "ensemble",
        "configs/kws.toml",
        "no/such/member.toml",
        "--out",
        out_s,
    ]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("no/such/member.toml"), "{err}");
    assert!(!out.exists());
}
