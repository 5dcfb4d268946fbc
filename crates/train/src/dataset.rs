//! Speech Commands-layout folders: the 12-class label set, clip listing, and the seeded speaker-disjoint split.

use std::path::{Path, PathBuf};

use crate::TrainError;

/// The ten keywords of the 12-class task, in label order after `_silence_` and `_unknown_`.
pub const KEYWORDS: [&str; 10] = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
];
/// Label index of `_silence_`.
pub const SILENCE: usize = 0;
/// Label index of `_unknown_`.
pub const UNKNOWN: usize = 1;

/// The 12 labels in model output order: `_silence_`, `_unknown_`, then [`KEYWORDS`].
pub fn labels() -> Vec<String> {
    let mut v = vec!["_silence_".to_string(), "_unknown_".to_string()];
    v.extend(KEYWORDS.iter().map(|s| s.to_string()));
    v
}

/// Map a folder name to a 12-class label index; `None` for folders that are not speech
/// (`_background_noise_`). Any other word folder counts as `_unknown_`.
pub fn label_of_folder(name: &str) -> Option<usize> {
    match name {
        "_silence_" => Some(SILENCE),
        "_unknown_" => Some(UNKNOWN),
        "_background_noise_" => None,
        n if n.starts_with('.') => None,
        n => Some(
            KEYWORDS
                .iter()
                .position(|k| *k == n)
                .map_or(UNKNOWN, |i| i + 2),
        ),
    }
}

/// One clip of a dataset folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub path: PathBuf,
    pub label: usize,
    /// Speaker id from `<...>_<speaker>_nohash_<n>.wav`, or the file stem when there is none
    /// (e.g. `_silence_` cuts), so such clips are split by file.
    pub speaker: String,
}

/// The speaker id of a file name: the token right before `_nohash_`, else the whole stem.
pub fn speaker_of(file_name: &str) -> String {
    let stem = file_name.strip_suffix(".wav").unwrap_or(file_name);
    match stem.find("_nohash_") {
        Some(i) => {
            let head = &stem[..i];
            head.rsplit('_').next().unwrap_or(head).to_string()
        }
        None => stem.to_string(),
    }
}

/// All `.wav` clips under a Speech Commands-layout folder, sorted by path (deterministic).
pub fn scan(dir: &Path) -> Result<Vec<Clip>, TrainError> {
    let rd = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut clips = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        let p = entry.path();
        if !p.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(label) = label_of_folder(&name) else {
            continue;
        };
        let files = std::fs::read_dir(&p).map_err(|e| TrainError::io(&p, e))?;
        for f in files {
            let f = f.map_err(|e| TrainError::io(&p, e))?;
            let fname = f.file_name().to_string_lossy().to_string();
            if !fname.to_ascii_lowercase().ends_with(".wav") {
                continue;
            }
            let speaker = if label == SILENCE {
                format!("silence:{fname}")
            } else {
                speaker_of(&fname)
            };
            clips.push(Clip {
                path: f.path(),
                label,
                speaker,
            });
        }
    }
    if clips.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no .wav clips in label folders",
            dir.display()
        )));
    }
    clips.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(clips)
}

/// FNV-1a, 64 bit: a stable hash (std's hasher is not stable across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Whether a speaker goes to validation: `hash(seed, speaker) % 100 < val_percent`.
pub fn is_validation(speaker: &str, seed: u64, val_percent: u32) -> bool {
    let mut key = seed.to_le_bytes().to_vec();
    key.extend_from_slice(speaker.as_bytes());
    fnv1a(&key) % 100 < u64::from(val_percent)
}

/// Split clips by speaker (no speaker on both sides). Returns (train, validation).
pub fn split_by_speaker(clips: &[Clip], seed: u64, val_percent: u32) -> (Vec<Clip>, Vec<Clip>) {
    clips
        .iter()
        .cloned()
        .partition(|c| !is_validation(&c.speaker, seed, val_percent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_ids() {
        assert_eq!(speaker_of("022cd682_nohash_0.wav"), "022cd682");
        assert_eq!(speaker_of("backward_0c540988_nohash_0.wav"), "0c540988");
        assert_eq!(speaker_of("1024.wav"), "1024");
    }

    #[test]
    fn folder_labels() {
        assert_eq!(label_of_folder("_silence_"), Some(0));
        assert_eq!(label_of_folder("yes"), Some(2));
        assert_eq!(label_of_folder("go"), Some(11));
        assert_eq!(label_of_folder("bird"), Some(UNKNOWN));
        assert_eq!(label_of_folder("_background_noise_"), None);
    }

    #[test]
    fn split_is_speaker_disjoint_and_seeded() {
        let clips: Vec<Clip> = (0..400)
            .map(|i| Clip {
                path: PathBuf::from(format!("yes/{:08x}_nohash_{}.wav", i / 4, i % 4)),
                label: 2,
                speaker: format!("{:08x}", i / 4),
            })
            .collect();
        let (tr, va) = split_by_speaker(&clips, 7, 20);
        assert_eq!(tr.len() + va.len(), 400);
        assert!(va.len() > 20 && va.len() < 140, "{}", va.len());
        for v in &va {
            assert!(tr.iter().all(|t| t.speaker != v.speaker));
        }
        let (tr2, _) = split_by_speaker(&clips, 7, 20);
        assert_eq!(tr, tr2);
        let (tr3, _) = split_by_speaker(&clips, 8, 20);
        assert_ne!(tr, tr3);
    }
}
