//! `sepstream listen` under faults: SIGTERM as well as SIGINT gives a clean exit with the final
//! stats within a second, on the simulated input and on a real sound server; the sound server
//! killed mid-run ends the run with the reason and the stats (no reconnection).
//!
//! The sound-server tests start their own PulseAudio (own runtime directory and socket, via
//! scripts/virtual-mic.sh) so that killing it cannot disturb other tests; they skip, saying so,
//! when pulseaudio is not installed (`..._or_skip_without_pulseaudio`).

use sepstream_testkit::repo_root;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The required bound for a clean exit after a signal or a lost device (the exit path does no
/// work proportional to the run, so one second is generous).
const EXIT_BOUND: Duration = Duration::from_secs(1);

fn listen(extra: &[&str], pulse: Option<&PrivatePulse>, config: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sepstream"));
    cmd.arg("listen")
        .arg("--model")
        .arg(repo_root().join("configs/kws_dscnn.toml"))
        .arg("--config")
        .arg(config)
        .arg("--random-weights")
        .arg("--stats")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = pulse {
        cmd.env("PULSE_RUNTIME_PATH", &p.runtime);
    }
    cmd.spawn().expect("spawn sepstream listen")
}

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

fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return,
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    panic!("no line containing {needle:?} within {timeout:?}; stderr so far: {seen:#?}");
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rest(rx: &mpsc::Receiver<String>) -> String {
    let mut s = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Sends `sig` once capture has started and checks: exit 0 within the bound, final stats.
fn stops_cleanly_on(sig: &str, extra: &[&str], pulse: Option<&PrivatePulse>) {
    let mut child = listen(extra, pulse, &repo_root().join("configs/pipeline.toml"));
    let rx = stderr_lines(&mut child);
    wait_for_line(&rx, "capture started", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    signal(&child, sig);
    let Some(st) = wait_exit(&mut child, Duration::from_secs(5)) else {
        let _ = child.kill();
        panic!("listen did not exit within 5 s of SIG{sig}");
    };
    let elapsed = t0.elapsed();
    let err = rest(&rx);
    assert!(st.success(), "SIG{sig}: exit {st:?}; stderr:\n{err}");
    assert!(elapsed < EXIT_BOUND, "SIG{sig}: exit took {elapsed:?}");
    assert!(
        err.contains("stats (final"),
        "SIG{sig}: no final stats:\n{err}"
    );
    assert!(err.contains("capture overruns"), "{err}");
}

#[test]
fn sigterm_exits_zero_within_a_second_with_final_stats() {
    stops_cleanly_on("TERM", &["--simulate", "silence"], None);
}

#[test]
fn a_sound_server_that_stalls_and_comes_back_is_opened_again_and_listen_goes_on_or_skip_without_pulseaudio(
) {
    let Some(pulse) = PrivatePulse::start("server-stalled") else {
        return;
    };
    let config = repo_root().join("configs/pipeline.toml");
    let mut child = listen(&["--for", "6s"], Some(&pulse), &config);
    let rx = stderr_lines(&mut child);
    wait_for_line(&rx, "capture started", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    // The server stops for 1.5 s, three times the shipped stall timeout, then resumes.
    pulse.signal_daemon("STOP");
    std::thread::sleep(Duration::from_millis(1500));
    pulse.signal_daemon("CONT");
    let Some(st) = wait_exit(&mut child, Duration::from_secs(20)) else {
        let _ = child.kill();
        panic!("listen still ran 20 s after a 6 s run with a stalled server");
    };
    let err = rest(&rx);
    assert!(st.success(), "exit {st:?}:\n{err}");
    let reopened = err
        .lines()
        .find_map(|l| {
            l.split("device reopened after a stall: ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no reopen count:\n{err}"));
    assert!(reopened >= 1, "the stall was not noticed:\n{err}");
    // Blocks kept coming after the stall: 10 ms blocks, about 50 before it; more than 150 in
    // all means at least a second of audio came after it.
    let final_stats = err.split("stats (final").nth(1).expect("final stats");
    let captured: u64 = final_stats
        .lines()
        .find(|l| l.trim_start().starts_with("capture"))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or_else(|| panic!("no capture count:\n{err}"));
    assert!(captured > 150, "{captured} blocks captured:\n{err}");
    eprintln!("reopened {reopened} times, {captured} blocks captured");
}

/// A PulseAudio of this test alone, with the virtual microphone of scripts/virtual-mic.sh.
struct PrivatePulse {
    dir: PathBuf,
    runtime: PathBuf,
}

impl PrivatePulse {
    fn start(name: &str) -> Option<Self> {
        if Command::new("pulseaudio")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            sepstream_testkit::skip(
                "pulseaudio is not installed (scripts/virtual-mic.sh --install)",
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("sepstream-{name}-{}", std::process::id()));
        let runtime = dir.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        let st = Command::new("bash")
            .arg(repo_root().join("scripts/virtual-mic.sh"))
            .env("PULSE_RUNTIME_PATH", &runtime)
            .env("VMIC_STATE_DIR", dir.join("state"))
            .status()
            .unwrap();
        assert!(
            st.success(),
            "scripts/virtual-mic.sh failed for the private daemon"
        );
        Some(Self { dir, runtime })
    }

    fn daemon_pid(&self) -> String {
        std::fs::read_to_string(self.runtime.join("pid"))
            .expect("the daemon writes its pid")
            .trim()
            .to_string()
    }

    fn signal_daemon(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.daemon_pid()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn kill_daemon(&self) {
        let st = Command::new("kill")
            .args(["-KILL", &self.daemon_pid()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for PrivatePulse {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("state/keepalive.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        if let Ok(pid) = std::fs::read_to_string(self.runtime.join("pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn sigint_and_sigterm_stop_listen_on_a_sound_server_cleanly_or_skip_without_pulseaudio() {
    let Some(pulse) = PrivatePulse::start("signals") else {
        return;
    };
    for sig in ["INT", "TERM"] {
        stops_cleanly_on(sig, &[], Some(&pulse));
    }
}

#[test]
fn the_sound_server_killed_mid_run_ends_listen_with_the_reason_and_stats_or_skip_without_pulseaudio(
) {
    let Some(pulse) = PrivatePulse::start("server-killed") else {
        return;
    };
    // The shipped settings (the file compiled into the binary): their stall timeout decides how
    // soon a silent device counts as lost.
    let config = repo_root().join("configs/pipeline.toml");
    let mut child = listen(&[], Some(&pulse), &config);
    let rx = stderr_lines(&mut child);
    wait_for_line(&rx, "capture started", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    pulse.kill_daemon();
    let Some(st) = wait_exit(&mut child, Duration::from_secs(10)) else {
        let _ = child.kill();
        panic!("listen still ran 10 s after the sound server was killed");
    };
    let elapsed = t0.elapsed();
    eprintln!("listen exited {elapsed:?} after the sound server was killed");
    let err = rest(&rx);
    assert!(
        !st.success(),
        "a lost device must give a non-zero exit:\n{err}"
    );
    assert!(err.contains("stage \"capture\" failed"), "{err}");
    assert!(
        err.contains("no audio for") || err.contains("stream error"),
        "the reason is missing:\n{err}"
    );
    // A stall is answered by opening the device again; with the server gone that fails, and
    // the run ends saying so.
    if err.contains("no audio for") {
        assert!(err.contains("opening it again failed"), "{err}");
    }
    eprintln!(
        "{}",
        err.lines().find(|l| l.contains("failed")).unwrap_or("")
    );
    assert!(err.contains("stats (final"), "no final stats:\n{err}");
    assert!(elapsed < EXIT_BOUND, "exit took {elapsed:?} after the kill");
}
