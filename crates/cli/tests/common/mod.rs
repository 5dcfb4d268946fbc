//! Helpers shared by the sound-server end-to-end tests: is PulseAudio up, which trained model to
//! use, and a real Speech Commands clip of a keyword that the model detects offline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use sepstream_pipeline::capture::BLOCK_MAX;
use sepstream_pipeline::{AudioBlock, KwsModel, KwsStage};
pub use sepstream_testkit::repo_root;
use sepstream_testkit::skip;

pub fn trained_model() -> Option<PathBuf> {
    for name in ["configs/kws.toml", "configs/kws_dscnn.toml"] {
        let p = repo_root().join(name);
        if p.is_file() {
            if let Ok(m) = KwsModel::load(&p, false) {
                if !m.random {
                    return Some(p);
                }
            }
        }
    }
    None
}

pub fn pulse_ok() -> bool {
    Command::new("pactl")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("paplay")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok()
}

/// What a test through the sound server needs ("live audio"; such tests are named
/// `..._or_skip_without_live_audio`): PulseAudio, the trained keyword model and the Speech
/// Commands clips of ../shared. Returns the loaded model and its spec path, or says why the test
/// skips (`sepstream_testkit::skip`) and returns `None`.
pub fn live_audio_ready() -> Option<(KwsModel, PathBuf)> {
    if !pulse_ok() {
        skip("no PulseAudio (`pactl info` failed); scripts/virtual-mic.sh starts one");
        return None;
    }
    let Some(model_path) = trained_model() else {
        skip("no trained keyword model (configs/kws.toml with its weights) yet");
        return None;
    };
    if !sepstream_testkit::shared_data()
        .join("speech_commands")
        .is_dir()
    {
        skip("../shared/data/speech_commands missing");
        return None;
    }
    let model = KwsModel::load(&model_path, false).expect("the trained model loads");
    Some((model, model_path))
}

/// Offline: the (audio end time within the clip) of the first detection of `keyword`, if any.
pub fn offline_detect(model: &KwsModel, samples: &[f32], rate: u32, keyword: &str) -> Option<f64> {
    let mut stage = KwsStage::new(model.clone(), Default::default());
    let lead = rate as usize / 2;
    let mut audio = vec![0.0f32; lead];
    audio.extend_from_slice(samples);
    audio.extend(std::iter::repeat_n(0.0, rate as usize));
    let mut found = None;
    for (k, chunk) in audio.chunks(rate as usize / 100).enumerate() {
        let mut b = AudioBlock {
            data: [0.0; BLOCK_MAX],
            len: chunk.len(),
            start_sample: (k * (rate as usize / 100)) as u64,
            rate,
            captured_at: Instant::now(),
        };
        b.data[..chunk.len()].copy_from_slice(chunk);
        stage
            .process_block(&b, |h| {
                if found.is_none() {
                    found = Some((h.label, h.end - lead as f64 / rate as f64));
                }
            })
            .unwrap();
    }
    let (label, end) = found?;
    (model.labels[label] == keyword).then_some(end)
}

/// The first of the first 30 clips of each keyword in `keywords` (in order) that `model` detects
/// offline: (keyword, clip, offline end of the word within the clip in seconds).
pub fn pick_clip(model: &KwsModel, keywords: &[&str]) -> Option<(String, PathBuf, f64)> {
    let data = sepstream_testkit::shared_data().join("speech_commands");
    for kw in keywords {
        let mut clips: Vec<PathBuf> = std::fs::read_dir(data.join(kw))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        clips.sort();
        for clip in clips.iter().take(30) {
            let Ok((s, r)) = sepstream_audio::read_audio(clip) else {
                continue;
            };
            if let Some(end) = offline_detect(model, &s, r, kw) {
                return Some((kw.to_string(), clip.clone(), end));
            }
        }
    }
    None
}

/// Forwards the child's stderr, line by line, to the returned channel (from a thread).
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    let err = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

/// A counter from the final stats line of `stage` (e.g. `in`, `missing`, `unheard`).
pub fn stat(stderr: &str, stage: &str, field: &str) -> u64 {
    let finals = stderr
        .rsplit_once("stats (final")
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("no final stats in:\n{stderr}"));
    let line = finals
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{stage} ")))
        .unwrap_or_else(|| panic!("no {stage} line in:\n{finals}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == field)
        .unwrap_or_else(|| panic!("no {field} in {line}"));
    words[at + 1].trim_end_matches("us").parse().unwrap()
}
