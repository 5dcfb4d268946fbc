//! Training-time augmentation: time shift, speed/pitch perturbation, gain, background-noise mixing at
//! a random SNR (on samples) and SpecAugment time/feature masks (on feature frames).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Augmentation settings (all randomness comes from the caller's seeded RNG).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Largest time shift either way, in seconds (zero fill).
    pub shift_s: f32,
    /// Probability of resampling by a random factor in `speed` (changes speed and pitch together).
    pub speed_prob: f32,
    pub speed: (f32, f32),
    /// Random gain range in dB applied to the clip.
    pub gain_db: (f32, f32),
    /// Probability of mixing a random `_silence_` clip into a speech clip.
    pub noise_prob: f32,
    /// SNR range (dB) of that mix.
    pub snr_db: (f32, f32),
    /// SpecAugment: number of time masks and their largest width in frames.
    pub time_masks: usize,
    pub time_mask_max: usize,
    /// SpecAugment: number of feature masks and their largest width in features.
    pub feature_masks: usize,
    pub feature_mask_max: usize,
    /// Probability that a clip is preceded by background audio instead of the stream's zero start.
    pub context_prob: f32,
    /// Largest shift of the clip's features along the feature (mel) axis, either way, in bands
    /// (edge bands repeated): a vocal tract a little longer or shorter, without changing pitch or
    /// duration as `speed` does (0 = off).
    pub feature_shift_max: usize,
    /// Probability that a word clip is laid over a stretch of the training recordings without
    /// commands (`--negatives`: running speech, other phrases), which then also fills the
    /// context before it and the tail after it, instead of silence or a `_silence_` clip.
    pub background_prob: f32,
    /// SNR range (dB) of the clip against that background (the clip's mean power over its one
    /// second against the background's).
    pub background_snr_db: (f32, f32),
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            shift_s: 0.1,
            speed_prob: 0.5,
            speed: (0.88, 1.12),
            gain_db: (-10.0, 6.0),
            noise_prob: 0.8,
            snr_db: (0.0, 25.0),
            time_masks: 2,
            time_mask_max: 5,
            feature_masks: 2,
            feature_mask_max: 4,
            context_prob: 0.5,
            feature_shift_max: 0,
            background_prob: 0.0,
            background_snr_db: (0.0, 20.0),
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all.
    pub fn none() -> Self {
        Self {
            shift_s: 0.0,
            speed_prob: 0.0,
            speed: (1.0, 1.0),
            gain_db: (0.0, 0.0),
            noise_prob: 0.0,
            snr_db: (0.0, 0.0),
            time_masks: 0,
            time_mask_max: 0,
            feature_masks: 0,
            feature_mask_max: 0,
            context_prob: 0.0,
            feature_shift_max: 0,
            background_prob: 0.0,
            background_snr_db: (0.0, 0.0),
        }
    }
}

pub(crate) fn uniform<R: Rng>(rng: &mut R, r: (f32, f32)) -> f32 {
    if r.1 > r.0 {
        rng.random_range(r.0..r.1)
    } else {
        r.0
    }
}

/// Resample by `factor` (> 1 is faster and higher) with linear interpolation.
pub fn change_speed(x: &[f32], factor: f32) -> Vec<f32> {
    if x.is_empty() || (factor - 1.0).abs() < 1e-6 {
        return x.to_vec();
    }
    let n = ((x.len() as f32) / factor).floor().max(1.0) as usize;
    (0..n)
        .map(|i| {
            let p = i as f32 * factor;
            let j = p.floor() as usize;
            let f = p - j as f32;
            let a = x[j.min(x.len() - 1)];
            let b = x[(j + 1).min(x.len() - 1)];
            a + (b - a) * f
        })
        .collect()
}

/// Exactly `len` samples: crop centred or pad with zeros on both sides.
pub fn fit_length(x: &[f32], len: usize) -> Vec<f32> {
    if x.len() >= len {
        let s = (x.len() - len) / 2;
        x[s..s + len].to_vec()
    } else {
        let mut v = vec![0.0; len];
        let s = (len - x.len()) / 2;
        v[s..s + x.len()].copy_from_slice(x);
        v
    }
}

/// Shift by `n` samples (positive: later), zero fill, same length.
pub fn shift(x: &[f32], n: isize) -> Vec<f32> {
    let len = x.len() as isize;
    (0..len)
        .map(|i| {
            let j = i - n;
            if (0..len).contains(&j) {
                x[j as usize]
            } else {
                0.0
            }
        })
        .collect()
}

/// Mean power of `x` (0 when empty).
pub fn power(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32
}

/// The gain that puts noise of mean power `noise_power` `snr_db` below a signal of mean power
/// `signal_power`; `None` when either is silent.
pub fn snr_gain(signal_power: f32, noise_power: f32, snr_db: f32) -> Option<f32> {
    (signal_power > 0.0 && noise_power > 0.0)
        .then(|| (signal_power / noise_power / 10f32.powf(snr_db / 10.0)).sqrt())
}

/// Adds `noise` (looped/cropped to length) at `snr_db` relative to the power of `x`.
pub fn mix_noise(x: &mut [f32], noise: &[f32], snr_db: f32) {
    let Some(g) = snr_gain(power(x), power(noise), snr_db) else {
        return;
    };
    for (i, v) in x.iter_mut().enumerate() {
        *v += g * noise[i % noise.len()];
    }
}

/// Augments one clip's samples (already `len` long). `is_silence` clips only get gain and
/// another noise mixed in; `noise_pool` are background clips.
pub fn augment_samples<R: Rng>(
    x: &[f32],
    sample_rate: u32,
    is_silence: bool,
    noise_pool: &[Vec<f32>],
    cfg: &AugmentConfig,
    rng: &mut R,
) -> Vec<f32> {
    let len = x.len();
    let mut y = if is_silence {
        x.to_vec()
    } else {
        let mut y = x.to_vec();
        if rng.random::<f32>() < cfg.speed_prob {
            y = fit_length(&change_speed(&y, uniform(rng, cfg.speed)), len);
        }
        let max = (cfg.shift_s * sample_rate as f32) as isize;
        if max > 0 {
            y = shift(&y, rng.random_range(-(max as i64)..=max as i64) as isize);
        }
        y
    };
    let g = 10f32.powf(uniform(rng, cfg.gain_db) / 20.0);
    y.iter_mut().for_each(|v| *v *= g);
    if !noise_pool.is_empty() && rng.random::<f32>() < cfg.noise_prob {
        let n = &noise_pool[rng.random_range(0..noise_pool.len())];
        let snr = if is_silence {
            uniform(rng, (-5.0, 10.0))
        } else {
            uniform(rng, cfg.snr_db)
        };
        mix_noise(&mut y, n, snr);
    }
    y
}

/// SpecAugment masks on `t` frames of `f` features (set to 0, the normalised mean); frames before
/// `first` (context) are left alone.
pub fn spec_augment<R: Rng>(
    feats: &mut [f32],
    t: usize,
    f: usize,
    first: usize,
    cfg: &AugmentConfig,
    rng: &mut R,
) {
    if t <= first {
        return;
    }
    if cfg.feature_shift_max > 0 {
        let m = cfg.feature_shift_max.min(f.saturating_sub(1)) as i64;
        let d = rng.random_range(-m..=m) as isize;
        if d != 0 {
            for fr in first..t {
                shift_features(&mut feats[fr * f..(fr + 1) * f], d);
            }
        }
    }
    for _ in 0..cfg.time_masks {
        if cfg.time_mask_max == 0 {
            break;
        }
        let w = rng.random_range(0..=cfg.time_mask_max).min(t - first);
        let s = first + rng.random_range(0..=(t - first - w));
        for fr in s..s + w {
            feats[fr * f..(fr + 1) * f]
                .iter_mut()
                .for_each(|v| *v = 0.0);
        }
    }
    for _ in 0..cfg.feature_masks {
        if cfg.feature_mask_max == 0 {
            break;
        }
        let w = rng.random_range(0..=cfg.feature_mask_max).min(f);
        let s = rng.random_range(0..=(f - w));
        for fr in first..t {
            feats[fr * f + s..fr * f + s + w]
                .iter_mut()
                .for_each(|v| *v = 0.0);
        }
    }
}

/// Moves one frame's features `d` places up (`d > 0`) or down the feature axis, repeating the
/// edge value into the places left empty.
fn shift_features(frame: &mut [f32], d: isize) {
    let n = frame.len() as isize;
    if d > 0 {
        let d = d.min(n - 1) as usize;
        frame.copy_within(..frame.len() - d, d);
        let edge = frame[d];
        frame[..d].iter_mut().for_each(|v| *v = edge);
    } else if d < 0 {
        let d = (-d).min(n - 1) as usize;
        frame.copy_within(d.., 0);
        let edge = frame[frame.len() - d - 1];
        let len = frame.len();
        frame[len - d..].iter_mut().for_each(|v| *v = edge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn speed_changes_length() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(change_speed(&x, 2.0).len(), 500);
        assert_eq!(change_speed(&x, 0.5).len(), 2000);
        assert_eq!(fit_length(&change_speed(&x, 1.1), 1000).len(), 1000);
    }

    #[test]
    fn noise_at_snr() {
        let mut x: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.1).sin()).collect();
        let n: Vec<f32> = (0..1600)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let clean = x.clone();
        mix_noise(&mut x, &n, 10.0);
        let diff: Vec<f32> = x.iter().zip(&clean).map(|(a, b)| a - b).collect();
        let snr = 10.0 * (power(&clean) / power(&diff)).log10();
        assert!((snr - 10.0).abs() < 0.01, "{snr}");
    }

    #[test]
    fn feature_shift_moves_bands_and_repeats_the_edge() {
        let mut up = [1.0, 2.0, 3.0, 4.0, 5.0];
        shift_features(&mut up, 2);
        assert_eq!(up, [1.0, 1.0, 1.0, 2.0, 3.0]);
        let mut down = [1.0, 2.0, 3.0, 4.0, 5.0];
        shift_features(&mut down, -1);
        assert_eq!(down, [2.0, 3.0, 4.0, 5.0, 5.0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cfg = AugmentConfig {
            feature_shift_max: 2,
            ..AugmentConfig::none()
        };
        let (t, f, first) = (6, 8, 2);
        let orig: Vec<f32> = (0..t * f).map(|i| (i % f) as f32).collect();
        let mut moved = 0;
        for _ in 0..50 {
            let mut x = orig.clone();
            spec_augment(&mut x, t, f, first, &cfg, &mut rng);
            assert_eq!(
                x[..first * f],
                orig[..first * f],
                "context frames untouched"
            );
            // Every clip frame is the same shifted ramp: one offset for the whole clip.
            let d = x[first * f + 4] - 4.0;
            assert!(d.abs() <= 2.0);
            for fr in first..t {
                assert_eq!(x[fr * f + 4], 4.0 + d);
            }
            moved += usize::from(d != 0.0);
        }
        assert!(moved > 20, "{moved} of 50 shifted");
    }

    #[test]
    fn masks_stay_in_range() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let cfg = AugmentConfig::default();
        for _ in 0..100 {
            let mut f = vec![1.0; 30 * 10];
            spec_augment(&mut f, 30, 10, 5, &cfg, &mut rng);
            assert!(f[..50].iter().all(|v| *v == 1.0));
        }
    }

    #[test]
    fn augmentation_files_parse_and_typos_are_refused() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("augment") && name.ends_with(".toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let cfg: AugmentConfig = toml::from_str(&text).unwrap();
                assert_ne!(cfg, AugmentConfig::none(), "{name}");
            }
        }
        let partial: AugmentConfig = toml::from_str("noise_prob = 0.25").unwrap();
        assert_eq!(partial.noise_prob, 0.25);
        assert_eq!(partial.shift_s, AugmentConfig::default().shift_s);
        assert!(toml::from_str::<AugmentConfig>("noise_probability = 0.25").is_err());
    }
}
