//! `sepstream listen` stops cleanly: SIGINT -> exit 0 within a second with the final stats printed;
//! a failing or panicking stage, or a device that fails mid-stream -> non-zero exit naming the stage.
//! These use the hidden `--simulate` input (the capture callback fed by a timer thread), so they
//! need no sound server.

use sepstream_testkit::repo_root;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn listen(extra: &[&str]) -> Child {
    let model = repo_root().join("configs/kws_dscnn.toml");
    let config = repo_root().join("configs/pipeline.toml");
    Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .arg("listen")
        .arg("--model")
        .arg(&model)
        .arg("--config")
        .arg(&config)
        .arg("--random-weights")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sepstream listen")
}

/// Lines of stderr as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line containing {needle:?} within {timeout:?}; stderr so far: {seen:#?}");
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rest(rx: &mpsc::Receiver<String>) -> String {
    let mut s = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

#[test]
fn sigint_exits_zero_within_a_second_with_final_stats() {
    let mut child = listen(&["--simulate", "silence", "--json", "--stats"]);
    let rx = stderr_lines(&mut child);
    wait_for_line(&rx, "capture started", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let st = wait_exit(&mut child, Duration::from_secs(1));
    let elapsed = t0.elapsed();
    let Some(st) = st else {
        let _ = child.kill();
        panic!("listen did not exit within 1 s of SIGINT");
    };
    let err = rest(&rx);
    assert!(st.success(), "exit {st:?}; stderr:\n{err}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert!(err.contains("stats (final"), "no final stats:\n{err}");
    for stage in ["capture", "inference", "actuation"] {
        assert!(err.contains(stage), "final stats miss {stage}:\n{err}");
    }
    assert!(err.contains("p99"), "{err}");
}

#[test]
fn for_duration_stops_by_itself() {
    let mut child = listen(&["--simulate", "silence", "--for", "1s", "--stats"]);
    let rx = stderr_lines(&mut child);
    let st = wait_exit(&mut child, Duration::from_secs(20)).expect("did not stop");
    let err = rest(&rx);
    assert!(st.success(), "{st:?}\n{err}");
    assert!(err.contains("stats (final"), "{err}");
    assert!(err.contains("capture overruns: 0 samples"), "{err}");
}

#[test]
fn a_failing_stage_exits_non_zero_and_names_it() {
    let mut child = listen(&["--simulate", "silence", "--test-hook", "inference:fail@30"]);
    let rx = stderr_lines(&mut child);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    let Some(st) = st else {
        let _ = child.kill();
        panic!("listen did not exit after a stage failure");
    };
    let err = rest(&rx);
    assert!(
        !st.success(),
        "a failed stage must give a non-zero exit\n{err}"
    );
    assert!(err.contains("stage \"inference\" failed"), "{err}");
}

#[test]
fn a_panicking_stage_exits_non_zero_and_names_it() {
    let mut child = listen(&["--simulate", "silence", "--test-hook", "inference:panic@30"]);
    let rx = stderr_lines(&mut child);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    let Some(st) = st else {
        let _ = child.kill();
        panic!("listen hung after a stage panic");
    };
    let err = rest(&rx);
    assert!(!st.success(), "{err}");
    assert!(err.contains("stage \"inference\" panicked"), "{err}");
}

#[test]
fn a_device_failure_mid_stream_ends_the_run_with_an_error() {
    let mut child = listen(&[
        "--simulate",
        "silence",
        "--simulate-fail-after",
        "500ms",
        "--stats",
    ]);
    let rx = stderr_lines(&mut child);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    let Some(st) = st else {
        let _ = child.kill();
        panic!("listen hung after a device failure");
    };
    let err = rest(&rx);
    assert!(!st.success(), "{err}");
    assert!(err.contains("stage \"capture\" failed"), "{err}");
    assert!(err.contains("disconnected"), "{err}");
    assert!(
        err.contains("stats (final"),
        "final stats still printed:\n{err}"
    );
}
