//! `sepstream wav` as a Unix tool: from any folder with the bundled model, standard input and
//! pipes (headers that give no length), every format, cut and corrupt files (the events before
//! the damage are kept, the damage is named with its byte offset, exit 1, no panic).

use sepstream_testkit::repo_root;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn sample() -> PathBuf {
    repo_root().join("assets/sample_keywords.wav")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepstream-wav-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `sepstream ARGS` in an empty folder outside the repository, with `stdin` bytes.
fn run_elsewhere(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let dir = scratch("cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .current_dir(&dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // Written from a thread: the pipe fills while the tool reads.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    child.wait_with_output().expect("finishes")
}

/// (keyword, end) of each text line.
fn events(out: &Output) -> Vec<(String, f64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            assert_eq!(v.len(), 5, "line {l:?}");
            (v[1].to_string(), v[3].parse().unwrap())
        })
        .collect()
}

fn keywords(ev: &[(String, f64)]) -> Vec<&str> {
    ev.iter().map(|e| e.0.as_str()).collect()
}

const SAMPLE_WORDS: [&str; 4] = ["yes", "stop", "left", "go"];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn from_another_folder_and_from_standard_input() {
    let file = sample();
    let out = run_elsewhere(&["wav", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let from_file = events(&out);
    assert_eq!(keywords(&from_file), SAMPLE_WORDS);
    let bytes = std::fs::read(&file).unwrap();
    let out = run_elsewhere(&["wav", "-"], Some(&bytes));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(events(&out), from_file);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-\tyes"));
    // `-` twice is refused before any work.
    let out = run_elsewhere(&["wav", "-", "-"], Some(b""));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("only once"), "{}", stderr(&out));
}

/// The sample's header and samples, with the data length replaced by `len`.
fn with_data_length(len: u32) -> Vec<u8> {
    let mut bytes = std::fs::read(sample()).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk");
    bytes[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
    bytes
}

#[test]
fn headers_that_give_no_length_are_read_to_the_end() {
    for len in [0u32, u32::MAX, 0x7FFF_F000] {
        let out = run_elsewhere(&["wav", "-"], Some(&with_data_length(len)));
        assert!(out.status.success(), "{len:#x}: {}", stderr(&out));
        assert_eq!(keywords(&events(&out)), SAMPLE_WORDS, "{len:#x}");
    }
}

#[test]
fn a_streaming_writer_piped_in_or_skip_without_sox() {
    // sox writing WAV to a pipe cannot seek back, so its header gives a placeholder length.
    let Ok(mut sox) = Command::new("sox")
        .arg(sample())
        .args(["-t", "wav", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        sepstream_testkit::skip("sox is not installed (scripts/system-deps.sh installs it)");
        return;
    };
    let pipe = sox.stdout.take().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .args(["wav", "-"])
        .stdin(Stdio::from(pipe))
        .output()
        .expect("runs");
    sox.wait().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(keywords(&events(&out)), SAMPLE_WORDS);
}

#[test]
fn a_cut_file_keeps_the_events_before_the_cut() {
    let full = run_elsewhere(&["wav", sample().to_str().unwrap()], None);
    let all = events(&full);
    assert_eq!(keywords(&all), SAMPLE_WORDS);
    let bytes = std::fs::read(sample()).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    // Cut at 6.5 s: after "left" (decided at about 5.6 s), before "go" (spoken at 6.85 s).
    let cut = data + 2 * 16000 * 13 / 2 + 1;
    let path = scratch("cut_at_6.5s.wav");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let out = run_elsewhere(&["wav", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let kept = events(&out);
    assert_eq!(
        kept,
        all[..3].to_vec(),
        "the events before the cut, unchanged"
    );
    let err = stderr(&out);
    assert!(err.contains("cut_at_6.5s.wav"), "{err}");
    assert!(err.contains(&format!("truncated at byte {cut}")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The same through standard input.
    let out = run_elsewhere(&["wav", "-"], Some(&bytes[..cut]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(keywords(&events(&out)), ["yes", "stop", "left"]);
}

#[test]
fn every_format_gives_the_events_of_the_wav() {
    let wav = events(&run_elsewhere(&["wav", sample().to_str().unwrap()], None));
    for name in [
        "sample_keywords_16k.flac",
        "sample_keywords_22k_stereo.ogg",
        "sample_keywords_44k.mp3",
    ] {
        let path = repo_root().join("assets/formats").join(name);
        let out = run_elsewhere(&["wav", path.to_str().unwrap()], None);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let got = events(&out);
        assert_eq!(keywords(&got), SAMPLE_WORDS, "{name}");
        for ((k, end), (_, wav_end)) in got.iter().zip(&wav) {
            // Resampled and lossy copies: the posteriors rise a little differently, and the
            // threshold is crossed up to 0.14 s (Ogg, 22.05 kHz stereo) from the WAV's time.
            assert!(
                (end - wav_end).abs() <= 0.2,
                "{name} {k}: {end} vs {wav_end}"
            );
        }
        // And piped in, with no file name to hint the format.
        let out = run_elsewhere(&["wav", "-"], Some(&std::fs::read(&path).unwrap()));
        assert!(out.status.success(), "{name} on stdin: {}", stderr(&out));
        assert_eq!(events(&out), got, "{name} on stdin");
    }
}

#[test]
fn corrupt_flac_and_mp3_are_clear_errors() {
    for name in ["sample_keywords_16k.flac", "sample_keywords_44k.mp3"] {
        let good_path = repo_root().join("assets/formats").join(name);
        let clean = events(&run_elsewhere(&["wav", good_path.to_str().unwrap()], None));
        let good = std::fs::read(&good_path).unwrap();
        // Noise over 40-60% of the bytes (a damaged disk or a bad download).
        let mut bytes = good.clone();
        let mut state = 0x2545_F491u32;
        for b in &mut bytes[good.len() * 2 / 5..good.len() * 3 / 5] {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b = state as u8;
        }
        let path = scratch(&format!("damaged_{name}"));
        std::fs::write(&path, &bytes).unwrap();
        let out = run_elsewhere(&["wav", path.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("damaged_{name}: damaged at")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        // What was printed is what the clean file gives up to the damage.
        let kept = events(&out);
        assert!(
            !kept.is_empty() && kept.len() < clean.len(),
            "{name}: {kept:?}"
        );
        assert_eq!(kept, clean[..kept.len()].to_vec(), "{name}");

        // Garbage over the header: the file is not audio at all.
        let mut bytes = good;
        for b in bytes.iter_mut().take(4096) {
            *b ^= 0xA5;
        }
        let path = scratch(&format!("no_header_{name}"));
        std::fs::write(&path, &bytes).unwrap();
        let out = run_elsewhere(&["wav", path.to_str().unwrap()], None);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        if name.ends_with(".flac") {
            // FLAC starts with a marker and a stream header: without them, nothing to decode.
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains(&format!("no_header_{name}")), "{err}");
        } else {
            // MP3 is a run of self-synchronising frames: the decoder finds the first whole
            // frame after the garbage, so the file still plays from there.
            assert!(events(&out).len() <= clean.len());
        }
    }
}

#[test]
fn models_lists_the_bundled_models_and_model_takes_their_names() {
    let out = run_elsewhere(&["models", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let models: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kws = models.iter().find(|m| m["name"] == "kws").expect("kws");
    assert_eq!(kws["labels"].as_array().unwrap().len(), 12);
    assert!(kws["params"].as_u64().unwrap() > 1000);
    assert!(kws["flops_per_frame"].as_f64().unwrap() > 1000.0);
    assert!(kws["measured"].as_str().unwrap().contains("held-out"));
    assert!(!kws["licence"].as_str().unwrap().is_empty());
    let file = sample();
    let by_name = run_elsewhere(&["wav", "--model", "kws", file.to_str().unwrap()], None);
    let by_spec = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .args(["wav", "--model"])
        .arg(repo_root().join("configs/kws.toml"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(by_name.status.success() && by_spec.status.success());
    assert_eq!(by_name.stdout, by_spec.stdout);
    let out = run_elsewhere(
        &["wav", "--model", "no_such_model", file.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no_such_model") && err.contains("kws"),
        "{err}"
    );
}

#[test]
fn robot_and_listen_find_their_models_from_another_folder() {
    let out = run_elsewhere(
        &[
            "robot",
            "--sim",
            "--seed",
            "3",
            "--commands",
            "0.5:go,3:stop",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let file = sample();
    // The sample as a simulated microphone (played in real time: 9 s).
    let out = run_elsewhere(
        &[
            "listen",
            "--simulate",
            file.to_str().unwrap(),
            "--for",
            "9s",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let heard: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect();
    assert_eq!(heard, SAMPLE_WORDS, "{}", stderr(&out));
    assert!(!scratch("cwd").join("configs").exists());
}

#[test]
fn a_full_disk_is_an_error_not_a_silent_loss_or_skip_without_dev_full() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        sepstream_testkit::skip("no /dev/full on this system");
        return;
    };
    for json in [false, true] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sepstream"));
        c.arg("wav");
        if json {
            c.arg("--json");
        }
        let out = c
            .arg(sample())
            .stdout(full.try_clone().unwrap())
            .stderr(Stdio::piped())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "json={json}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("writing the events") && err.contains("space"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
