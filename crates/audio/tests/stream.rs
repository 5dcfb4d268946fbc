//! Streaming equals batch: any block sizes give the same frames and timestamps; resampled streams are block-size independent too.

use proptest::prelude::*;
use sepstream_audio::{FeatureExtractor, FeatureStream, FrontendConfig, MelScale};

fn signal(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            let noise = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            0.3 * (i as f32 * 0.05).sin() + 0.2 * noise
        })
        .collect()
}

/// Pushes `x` in the given block sizes (cycled), collecting (timestamp, frame) pairs.
fn run_stream(stream: &mut FeatureStream, x: &[f32], sizes: &[usize]) -> (Vec<f64>, Vec<f32>) {
    let mut ts = Vec::new();
    let mut fs = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < x.len() {
        let n = sizes[k % sizes.len()].max(1).min(x.len() - pos);
        k += 1;
        stream.push(&x[pos..pos + n], |t, f| {
            ts.push(t);
            fs.extend_from_slice(f);
        });
        pos += n;
    }
    (ts, fs)
}

fn configs() -> Vec<FrontendConfig> {
    vec![
        FrontendConfig::default(),
        FrontendConfig {
            window: 480,
            hop: 160,
            n_fft: 512,
            mel_scale: MelScale::Slaney,
            preemphasis: Some(0.97),
            n_mfcc: Some(10),
            ..Default::default()
        },
        FrontendConfig {
            window: 400,
            hop: 160,
            n_fft: 400,
            n_mels: 32,
            n_mfcc: Some(13),
            mean: Some(vec![0.5; 13]),
            std: Some(vec![2.0; 13]),
            ..Default::default()
        },
    ]
}

#[test]
fn stream_equals_batch_for_block_sizes_1_and_7919() {
    let x = signal(16000 * 2 + 123, 7);
    for cfg in configs() {
        let batch = FeatureExtractor::new(&cfg).clip(&x);
        let n = cfg.n_frames(x.len());
        assert_eq!(batch.len(), n * cfg.feature_len());
        for sizes in [vec![1], vec![7919], vec![1, 7919, 3], vec![x.len()]] {
            let mut s = FeatureStream::new(&cfg, cfg.sample_rate).unwrap();
            let (ts, fs) = run_stream(&mut s, &x, &sizes);
            assert_eq!(fs, batch, "sizes {sizes:?}");
            assert_eq!(ts.len(), n);
            for (i, t) in ts.iter().enumerate() {
                assert_eq!(*t, cfg.frame_time(i));
            }
        }
    }
}

#[test]
fn reset_starts_a_new_stream() {
    let cfg = configs()[1].clone();
    let x = signal(5000, 3);
    let mut s = FeatureStream::new(&cfg, 16000).unwrap();
    let first = run_stream(&mut s, &x, &[333]);
    s.push(&signal(77, 9), |_, _| {});
    s.reset();
    let second = run_stream(&mut s, &x, &[41]);
    assert_eq!(first, second);
}

#[test]
fn resampled_timestamps_are_in_the_input_timeline() {
    // A 1 kHz tone burst starting at 0.5 s in 48 kHz input: the first frame whose window
    // contains the burst must carry a timestamp just after 0.5 s, not shifted by the resampler.
    let cfg = FrontendConfig::default();
    let rate = 48000;
    let x: Vec<f32> = (0..rate as usize)
        .map(|i| {
            if i >= rate as usize / 2 {
                0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate as f32).sin()
            } else {
                0.0
            }
        })
        .collect();
    let mut s = FeatureStream::new(&cfg, rate).unwrap();
    assert!(s.resampler_delay() > 0);
    let mut frames = Vec::new();
    s.push(&x, |t, f| {
        frames.push((t, f.iter().cloned().fold(f32::MIN, f32::max)))
    });
    s.finish(|t, f| frames.push((t, f.iter().cloned().fold(f32::MIN, f32::max))));
    // All of the second's frames come out after finish: (16000 - 640) / 320 + 1 = 49.
    assert_eq!(frames.len(), 49);
    let floor = cfg.log_floor.ln();
    let first_loud = frames.iter().find(|(_, m)| *m > 0.0).unwrap().0;
    // Frame ends are multiples of 20 ms from 40 ms; the burst starts at 0.5 s, so the first
    // frame with clear energy ends in (0.5, 0.54] s.
    assert!(
        first_loud > 0.5 && first_loud <= 0.54 + 1e-9,
        "{first_loud}"
    );
    // Frames wholly before the burst are silent up to resampler ringing (loud frames are ~+8.8).
    assert!(frames[0].1 < floor + 1.0);
    for (t, m) in &frames {
        if *t <= 0.48 {
            assert!(*m < 0.0, "frame at {t} has {m}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Any chunking at the model rate gives the batch frames and timestamps exactly.
    #[test]
    fn prop_stream_equals_batch(
        seed in any::<u32>(),
        len in 0usize..12000,
        cfg_i in 0usize..3,
        sizes in proptest::collection::vec(prop_oneof![Just(1usize), Just(7919usize), 1usize..2000], 1..12),
    ) {
        let cfg = configs()[cfg_i].clone();
        let x = signal(len, seed);
        let batch = FeatureExtractor::new(&cfg).clip(&x);
        let mut s = FeatureStream::new(&cfg, cfg.sample_rate).unwrap();
        let (ts, fs) = run_stream(&mut s, &x, &sizes);
        prop_assert_eq!(&fs, &batch);
        prop_assert_eq!(ts.len(), cfg.n_frames(len));
        for (i, t) in ts.iter().enumerate() {
            prop_assert_eq!(*t, cfg.frame_time(i));
        }
    }

    /// Through the resampler, the frames do not depend on the block sizes either.
    #[test]
    fn prop_resampled_stream_is_block_size_independent(
        seed in any::<u32>(),
        rate in prop_oneof![Just(8000u32), Just(22050u32), Just(44100u32), Just(48000u32), Just(11025u32), Just(44101u32)],
        sizes in proptest::collection::vec(prop_oneof![Just(1usize), Just(7919usize), 1usize..3000], 1..8),
    ) {
        let cfg = FrontendConfig::default();
        let x = signal(rate as usize / 2, seed);
        let mut a = FeatureStream::new(&cfg, rate).unwrap();
        let whole = run_stream(&mut a, &x, &[x.len()]);
        let mut b = FeatureStream::new(&cfg, rate).unwrap();
        let chunked = run_stream(&mut b, &x, &sizes);
        prop_assert!(!whole.0.is_empty());
        prop_assert_eq!(whole, chunked);
    }
}

#[test]
fn resampled_stream_matches_features_of_the_same_sound_made_at_16k() {
    // Three tones synthesised at 48 kHz and at 16 kHz: the resampled stream's frames match the
    // batch frames of the 16 kHz version in every band within 40 dB of the frame's peak.
    let cfg = FrontendConfig::default();
    let make = |rate: u32, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / rate as f64;
                [(300.0, 0.3), (1200.0, 0.2), (3000.0, 0.1)]
                    .iter()
                    .map(|(f, a)| a * (2.0 * std::f64::consts::PI * f * t).sin())
                    .sum::<f64>() as f32
            })
            .collect()
    };
    let want = FeatureExtractor::new(&cfg).clip(&make(16000, 16000));
    for rate in [48000u32, 44100, 22050, 44101] {
        let mut s = FeatureStream::new(&cfg, rate).unwrap();
        let mut got = Vec::new();
        s.push(&make(rate, rate as usize), |_, f| got.extend_from_slice(f));
        s.finish(|_, f| got.extend_from_slice(f));
        assert_eq!(got.len(), want.len(), "{rate}");
        let nb = cfg.n_mels;
        let mut compared = 0;
        // Skip the last frame: it holds the resampler's flushed tail.
        for (g, w) in got
            .chunks(nb)
            .zip(want.chunks(nb))
            .take(want.len() / nb - 1)
        {
            let peak = w.iter().cloned().fold(f32::MIN, f32::max);
            for (a, b) in g.iter().zip(w) {
                if *b > peak - 9.2 {
                    compared += 1;
                    assert!(
                        (a - b).abs() < 0.05,
                        "{rate} Hz: resampled {a} vs direct {b}"
                    );
                }
            }
        }
        assert!(compared > 100);
    }
}
