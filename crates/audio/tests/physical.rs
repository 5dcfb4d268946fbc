//! Physical checks of the front end: tones land in their mel band, silence gives the floor, gain shifts every bin.

use sepstream_audio::{mel_band_edges, FeatureExtractor, FrontendConfig, MelScale};

fn tone(freq: f32, amp: f32, n: usize, rate: u32) -> Vec<f32> {
    (0..n)
        .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

#[test]
fn frame_count_and_length() {
    let cfg = FrontendConfig::default();
    let mut fx = FeatureExtractor::new(&cfg);
    assert_eq!(fx.clip(&vec![0.0; 639]).len(), 0);
    assert_eq!(fx.clip(&vec![0.0; 640]).len(), 40);
    assert_eq!(fx.clip(&vec![0.0; 16000]).len(), 49 * 40);
    assert_eq!(cfg.n_frames(16000), 49);
    assert!((cfg.frame_time(0) - 0.04).abs() < 1e-12);
    assert!((cfg.frame_rate() - 50.0).abs() < 1e-12);
}

#[test]
fn silence_gives_log_floor() {
    for scale in [MelScale::Htk, MelScale::Slaney] {
        let cfg = FrontendConfig {
            mel_scale: scale,
            ..Default::default()
        };
        let f = FeatureExtractor::new(&cfg).clip(&vec![0.0; 4000]);
        let floor = cfg.log_floor.ln();
        assert!(!f.is_empty());
        for v in f {
            assert_eq!(v, floor);
        }
    }
}

#[test]
fn pure_tone_lands_in_its_mel_band() {
    for scale in [MelScale::Htk, MelScale::Slaney] {
        let cfg = FrontendConfig {
            mel_scale: scale,
            ..Default::default()
        };
        let edges = mel_band_edges(&cfg);
        let mut fx = FeatureExtractor::new(&cfg);
        for freq in [150.0f32, 440.0, 1000.0, 2500.0, 5000.0, 7000.0] {
            let f = fx.clip(&tone(freq, 0.5, 640 + 320 * 4, 16000));
            for frame in f.chunks(cfg.n_mels) {
                let m = argmax(frame);
                // Band m rises from edges[m] to its centre edges[m+1] and falls to edges[m+2];
                // the tone must lie inside it, nearest its centre among the bands around.
                assert!(
                    edges[m] < freq as f64 && (freq as f64) < edges[m + 2],
                    "{scale:?} {freq} Hz landed in band {m} [{}, {}]",
                    edges[m],
                    edges[m + 2]
                );
                assert!((edges[m + 1] - freq as f64).abs() <= (edges[m + 2] - edges[m]) / 2.0);
            }
        }
    }
}

#[test]
fn doubling_amplitude_adds_ln4_to_every_bin() {
    // Power doubles twice: +ln(4) nats = +20*log10(2) dB = 6.02 dB in every band above the floor.
    for scale in [MelScale::Htk, MelScale::Slaney] {
        let cfg = FrontendConfig {
            mel_scale: scale,
            log_floor: 1e-20,
            ..Default::default()
        };
        let mut fx = FeatureExtractor::new(&cfg);
        let mut noise = Vec::with_capacity(8000);
        let mut s: u32 = 12345;
        for _ in 0..8000 {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            noise.push((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5);
        }
        let a = fx.clip(&noise);
        let doubled: Vec<f32> = noise.iter().map(|x| 2.0 * x).collect();
        let b = fx.clip(&doubled);
        let ln4 = 4f32.ln();
        for (x, y) in a.iter().zip(&b) {
            assert!((y - x - ln4).abs() < 1e-4, "{x} -> {y}");
        }
    }
}
