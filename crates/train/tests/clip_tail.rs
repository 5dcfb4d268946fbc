//! A clip tail is silence after the clip: classifying with `tail` seconds equals classifying the
//! clip with that much silence appended, and the answer changes with it (the model is causal).

use sepstream_audio::FrontendConfig;
use sepstream_nn::{ModelSpec, Network};
use sepstream_testkit::repo_root;
use sepstream_train::evaluate::{classify_samples, tail_samples};

#[test]
fn a_clip_tail_is_the_clip_followed_by_silence() {
    let spec = ModelSpec::load(&repo_root().join("configs/kws_tc_10ms.toml")).expect("template");
    let fe = FrontendConfig::from_table(spec.frontend.as_ref().unwrap()).expect("front end");
    let net = Network::random(spec, 5).expect("random weights");
    let rate = fe.sample_rate;
    // A one-second rising tone with a second voice: something for every mel band to see.
    let clip: Vec<f32> = (0..rate as usize)
        .map(|i| {
            let t = i as f32 / rate as f32;
            0.3 * (2.0 * std::f32::consts::PI * (300.0 + 900.0 * t) * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 2300.0 * t).sin()
        })
        .collect();
    assert_eq!(tail_samples(0.2, rate), rate as usize / 5);
    let with_tail = classify_samples(&net, &fe, &clip, rate, 0.2)
        .unwrap()
        .unwrap();
    let mut padded = clip.clone();
    padded.resize(clip.len() + tail_samples(0.2, rate), 0.0);
    let appended = classify_samples(&net, &fe, &padded, rate, 0.0)
        .unwrap()
        .unwrap();
    assert_eq!(with_tail, appended);
    let at_end = classify_samples(&net, &fe, &clip, rate, 0.0)
        .unwrap()
        .unwrap();
    assert!(
        with_tail
            .iter()
            .zip(&at_end)
            .any(|(a, b)| (a - b).abs() > 1e-4),
        "the tail changed nothing: {with_tail:?}"
    );
}
