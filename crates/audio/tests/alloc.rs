//! Zero allocation after warm-up: resampler + front end per 160-sample block, and the keyword detector per posterior frame.

use sepstream_audio::{DecisionConfig, FeatureStream, FrontendConfig, KeywordDetector, MelScale};

#[global_allocator]
static ALLOC: sepstream_testkit::CountingAlloc = sepstream_testkit::CountingAlloc;

fn audio(n: usize, rate: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 3100.0 * t).sin()
        })
        .collect()
}

#[test]
fn ten_seconds_through_resampler_and_frontend_allocate_nothing() {
    let cfgs = [
        FrontendConfig::default(),
        FrontendConfig {
            window: 480,
            hop: 160,
            n_fft: 512,
            mel_scale: MelScale::Slaney,
            preemphasis: Some(0.97),
            n_mfcc: Some(10),
            mean: Some(vec![0.0; 10]),
            std: Some(vec![1.0; 10]),
            ..Default::default()
        },
    ];
    for cfg in cfgs {
        for rate in [16000u32, 48000, 44100, 8000, 44101] {
            let x = audio(rate as usize * 11, rate);
            let mut s = FeatureStream::new(&cfg, rate).unwrap();
            let mut frames = 0usize;
            let mut sum = 0.0f32;
            // Warm-up: the first second.
            for b in x[..rate as usize].chunks(160) {
                s.push(b, |_, f| {
                    frames += 1;
                    sum += f[0];
                });
            }
            let ((), stats) = sepstream_testkit::count_allocations(|| {
                for b in x[rate as usize..].chunks(160) {
                    s.push(b, |_, f| {
                        frames += 1;
                        sum += f[0];
                    });
                }
            });
            assert_eq!(stats.bytes, 0, "rate {rate}: {stats:?}");
            assert_eq!(stats.allocations, 0);
            // 11 s at 50 or 100 frames/s, minus the window and the resampler delay.
            assert!(frames as f64 > 10.5 * cfg.frame_rate(), "{frames}");
            assert!(sum.is_finite());
        }
    }
}

#[test]
fn keyword_detector_push_allocates_nothing() {
    let labels: Vec<String> = ["_silence_", "_unknown_", "yes", "no"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut d = KeywordDetector::new(&DecisionConfig::default(), &labels, 0.02);
    let frames: Vec<[f32; 4]> = (0..2000)
        .map(|i| {
            let yes = if (i / 50) % 3 == 1 { 0.95 } else { 0.02 };
            [1.0 - yes, 0.0, yes, 0.0]
        })
        .collect();
    let mut hits = 0;
    let ((), stats) = sepstream_testkit::count_allocations(|| {
        for (i, p) in frames.iter().enumerate() {
            if d.push_hit((i + 1) as f64 * 0.02, p).is_some() {
                hits += 1;
            }
        }
    });
    assert_eq!(stats.bytes, 0, "{stats:?}");
    assert!(hits >= 10, "{hits}");
    // `push` allocates nothing on frames where no keyword fires.
    d.reset();
    let silence = [1.0f32, 0.0, 0.0, 0.0];
    let ((), stats) = sepstream_testkit::count_allocations(|| {
        for i in 0..1000 {
            assert!(d.push(i as f64 * 0.02, &silence).is_none());
        }
    });
    assert_eq!(stats.bytes, 0);
}
