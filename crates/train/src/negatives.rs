//! Recordings in which nobody addresses the device, for training: split by speaker, cut into
//! `_unknown_` windows, laid under keyword clips as a background, and mined for the places where
//! a model fires (hard negatives).

use std::path::PathBuf;

use rand::Rng;
use rayon::prelude::*;
use sepstream_audio::{DecisionConfig, FrontendConfig};
use sepstream_kws::Spotter;
use sepstream_nn::Network;

use crate::evaluate::{audio_files, is_held_out_recording};
use crate::TrainError;

/// How a training run uses recordings without commands.
#[derive(Clone, Debug, PartialEq)]
pub struct NegativeConfig {
    /// Folders of recordings (WAV/FLAC/MP3/Ogg, searched recursively) in which no command is
    /// spoken: running speech, other phrases, noise. Split by speaker (the file name up to its
    /// first `-` or `_`) with the clips' split seed; only the training speakers are used.
    pub dirs: Vec<PathBuf>,
    /// `_unknown_` windows cut from them per epoch (at fresh, seeded places each epoch).
    pub windows_per_epoch: usize,
    /// Mine hard negatives after every this many epochs (0 = never): the model of that epoch
    /// streams over the training recordings and the windows ending where it fires join the
    /// negatives (up to half of each epoch's windows).
    pub mine_every: usize,
    /// Decision threshold while mining (below the spec's, so near misses count too).
    pub mine_threshold: f32,
    /// Most hard-negative windows kept (the highest scores).
    pub mine_max: usize,
}

impl Default for NegativeConfig {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            windows_per_epoch: 2000,
            mine_every: 5,
            mine_threshold: 0.3,
            mine_max: 3000,
        }
    }
}

/// The recordings under `dirs` whose speaker is a training speaker of (`split_seed`,
/// `val_percent`), and how many were left out as held-out speakers'.
pub fn training_files(
    dirs: &[PathBuf],
    split_seed: u64,
    val_percent: u32,
) -> Result<(Vec<PathBuf>, usize), TrainError> {
    let mut files = Vec::new();
    let mut held_out = 0;
    for d in dirs {
        for f in audio_files(d)? {
            if is_held_out_recording(&f, split_seed, val_percent) {
                held_out += 1;
            } else {
                files.push(f);
            }
        }
    }
    Ok((files, held_out))
}

/// The training speakers' recordings, whole, at the model rate.
pub struct Recordings {
    /// The samples of each recording.
    pub beds: Vec<Vec<f32>>,
    /// Their files, in the same order.
    pub files: Vec<PathBuf>,
    /// Recordings left out because their speaker is held out for validation.
    pub held_out: usize,
    /// Start of each recording in the recordings laid end to end, and the total at the end.
    starts: Vec<usize>,
}

impl Recordings {
    /// Reads every recording under `dirs` whose speaker is a training speaker of
    /// (`split_seed`, `val_percent`), resampled to `rate`.
    pub fn load(
        dirs: &[PathBuf],
        rate: u32,
        split_seed: u64,
        val_percent: u32,
    ) -> Result<Self, TrainError> {
        let (files, held_out) = training_files(dirs, split_seed, val_percent)?;
        let beds = files
            .par_iter()
            .map(|p| {
                let (s, r) = sepstream_audio::read_audio(p)?;
                Ok(sepstream_audio::resample_clip(&s, r, rate)?)
            })
            .collect::<Result<Vec<Vec<f32>>, TrainError>>()?;
        Ok(Self::new(files, beds, held_out))
    }

    /// Recordings already read: `beds[i]` holds the samples of `files[i]`.
    pub fn new(files: Vec<PathBuf>, beds: Vec<Vec<f32>>, held_out: usize) -> Self {
        let mut starts = Vec::with_capacity(beds.len() + 1);
        let mut total = 0;
        for b in &beds {
            starts.push(total);
            total += b.len();
        }
        starts.push(total);
        Self {
            beds,
            files,
            held_out,
            starts,
        }
    }

    /// No audio at all.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Samples in all recordings.
    pub fn total(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    /// The `len` samples of recording `bed` that end at sample `end` (zeros before its start,
    /// `end` clamped to its length).
    pub fn window_ending(&self, bed: usize, end: usize, len: usize) -> Vec<f32> {
        let b = &self.beds[bed];
        let end = end.min(b.len());
        let from = end.saturating_sub(len);
        let mut out = vec![0.0; len - (end - from)];
        out.extend_from_slice(&b[from..end]);
        out
    }

    /// `len` samples of one recording ending at a place drawn evenly over all recordings'
    /// samples (longer recordings are drawn more often).
    pub fn random_window<R: Rng>(&self, len: usize, rng: &mut R) -> Vec<f32> {
        let at = rng.random_range(0..self.total().max(1));
        let bed = self.starts.partition_point(|&s| s <= at).saturating_sub(1);
        let bed = bed.min(self.beds.len().saturating_sub(1));
        let end = (at - self.starts[bed]).max(len.min(self.beds[bed].len()));
        self.window_ending(bed, end, len)
    }
}

/// A place in the training recordings where a model fired.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HardNegative {
    /// Index into [`Recordings::beds`].
    pub bed: usize,
    /// The sample at which the event was decided.
    pub end: usize,
    /// Its smoothed posterior.
    pub score: f32,
}

/// Streams `net` over every recording (each from a reset state, with `decision` at
/// `threshold`) and returns where it fired, by recording and time.
pub fn mine(
    net: &Network,
    fe: &FrontendConfig,
    decision: &DecisionConfig,
    threshold: f32,
    recs: &Recordings,
) -> Result<Vec<HardNegative>, TrainError> {
    let mut decision = decision.clone();
    decision.threshold = threshold;
    decision.release = decision.release.min(threshold);
    let rate = fe.sample_rate;
    let per_bed = recs
        .beds
        .par_iter()
        .enumerate()
        .map(|(bed, samples)| {
            let mut spotter = Spotter::with_network(net, fe, &decision, rate)?;
            let mut hits = Vec::new();
            let mut on = |hop: &sepstream_kws::Hop<'_>| {
                if let Some(h) = &hop.hit {
                    hits.push(HardNegative {
                        bed,
                        end: (hop.time * f64::from(rate)) as usize,
                        score: h.score,
                    });
                }
            };
            spotter.push_hops(samples, &mut on);
            spotter.finish_hops(&mut on);
            Ok(hits)
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    Ok(per_bed.into_iter().flatten().collect())
}

/// Adds `found` to `kept`, leaving out places within `min_gap` samples of one already kept,
/// then keeps the `max` highest scores. Returns how many of `found` were new.
pub fn merge(
    kept: &mut Vec<HardNegative>,
    found: Vec<HardNegative>,
    max: usize,
    min_gap: usize,
) -> usize {
    let mut new = 0;
    for h in found {
        if !kept
            .iter()
            .any(|k| k.bed == h.bed && k.end.abs_diff(h.end) < min_gap)
        {
            kept.push(h);
            new += 1;
        }
    }
    kept.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.bed.cmp(&b.bed))
            .then(a.end.cmp(&b.end))
    });
    kept.truncate(max);
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn recs(lens: &[usize]) -> Recordings {
        let beds: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|k| (i * 1000 + k) as f32).collect())
            .collect();
        Recordings::new(vec![PathBuf::new(); beds.len()], beds, 0)
    }

    #[test]
    fn windows_are_continuous_audio_of_one_recording() {
        let r = recs(&[50, 300, 10]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let w = r.random_window(40, &mut rng);
            assert_eq!(w.len(), 40);
            let nz: Vec<f32> = w.iter().copied().filter(|v| *v != 0.0).collect();
            // Consecutive samples of one recording (zeros only before a short one's start).
            for p in nz.windows(2) {
                assert_eq!(p[1] - p[0], 1.0, "{w:?}");
            }
        }
        assert_eq!(
            r.window_ending(1, 20, 5),
            vec![1015., 1016., 1017., 1018., 1019.]
        );
        assert_eq!(r.window_ending(2, 99, 12)[..2], [0.0, 0.0]);
    }

    #[test]
    fn merge_drops_near_duplicates_and_keeps_the_highest() {
        let h = |bed, end, score| HardNegative { bed, end, score };
        let mut kept = vec![h(0, 1000, 0.5)];
        let new = merge(
            &mut kept,
            vec![h(0, 1100, 0.9), h(0, 5000, 0.4), h(1, 1000, 0.8)],
            2,
            400,
        );
        assert_eq!(new, 2);
        assert_eq!(kept, vec![h(1, 1000, 0.8), h(0, 1000, 0.5)]);
    }
}
