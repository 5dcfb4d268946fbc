//! End to end through a real sound server: `sepstream listen --json` captures from PulseAudio's
//! default source (the monitor of the null sink `vmic`, set up by scripts/virtual-mic.sh), a real
//! Speech Commands clip is played into the sink with `paplay`, and the event must arrive with the
//! right keyword within 1.0 s of the word's end, with zero capture overruns.
//!
//! Skips (printing why) when PulseAudio is not running, the trained model or ../shared is missing.
//! The clip is chosen offline first: the first clip of the keyword that the same model detects
//! when its samples are fed straight to the inference stage, so the test checks the live path.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{live_audio_ready, pick_clip, repo_root, stderr_lines};

#[test]
fn keyword_played_into_the_sound_server_is_detected_within_a_second_or_skip_without_live_audio() {
    let Some((model, model_path)) = live_audio_ready() else {
        return;
    };
    // A clip the model detects offline.
    let Some((keyword, clip, word_end)) = pick_clip(&model, &["yes", "no", "stop", "go"]) else {
        panic!("the model detects none of the first 30 clips of yes/no/stop/go offline");
    };
    eprintln!(
        "clip {} ({keyword}), offline detection at {word_end:.3} s",
        clip.display()
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .arg("listen")
        .arg("--model")
        .arg(&model_path)
        .arg("--config")
        .arg(repo_root().join("configs/pipeline.toml"))
        .args(["--json", "--stats", "--for", "6s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let erx = stderr_lines(&mut child);
    let (otx, orx) = mpsc::channel::<(String, f64)>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = otx.send((l, sepstream_pipeline::event::unix_now()));
        }
    });
    // Wait until capture has begun.
    let mut stderr_seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match erx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => {
                let hit = l.contains("capture started");
                stderr_seen.push(l);
                if hit {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("capture never started: {stderr_seen:#?}");
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let played_at = sepstream_pipeline::event::unix_now();
    let play = Command::new("paplay")
        .arg("--device=vmic")
        .arg(&clip)
        .status()
        .unwrap();
    assert!(play.success(), "paplay failed");
    let status = child.wait().unwrap();
    let mut stderr_rest = String::new();
    while let Ok(l) = erx.recv_timeout(Duration::from_millis(300)) {
        stderr_rest.push_str(&l);
        stderr_rest.push('\n');
    }
    assert!(status.success(), "listen failed: {status:?}\n{stderr_rest}");
    let events: Vec<(serde_json::Value, f64)> = orx
        .try_iter()
        .filter_map(|(l, t)| serde_json::from_str(&l).ok().map(|v| (v, t)))
        .collect();
    eprintln!("events: {events:?}\n{stderr_rest}");
    let (ev, seen_at) = events
        .iter()
        .find(|(v, _)| v["keyword"] == keyword.as_str())
        .unwrap_or_else(|| panic!("no {keyword:?} event; got {events:?}\n{stderr_rest}"));
    let decided = ev["decided_at"].as_f64().unwrap();
    let latency = decided - (played_at + word_end);
    eprintln!(
        "played at {played_at:.3}, decided at {decided:.3} (+{:.3} s), printed +{:.3} s; \
         latency after the word's offline end: {latency:.3} s",
        decided - played_at,
        seen_at - played_at
    );
    assert!(
        decided >= played_at,
        "event decided before the clip was played"
    );
    assert!(
        latency <= 1.0,
        "decision {latency:.3} s after the word's end (limit 1.0 s)"
    );
    assert!(
        events.iter().all(|(v, _)| v["keyword"] == keyword.as_str()),
        "spurious events: {events:?}"
    );
    assert!(
        stderr_rest.contains("capture overruns: 0 samples"),
        "capture overran:\n{stderr_rest}"
    );
}
