//! Keyword decisions on synthetic posterior sequences: one bump one event, two bumps two, a low bump none.

use sepstream_audio::{DecisionConfig, KeywordDetector, KeywordEvent};

const PERIOD: f64 = 0.02;

fn labels() -> Vec<String> {
    ["_silence_", "_unknown_", "yes", "no"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Posterior frames: "yes" gets `height` during each (start_s, len_s) bump, silence the rest.
fn sequence(total_s: f64, bumps: &[(f64, f64, f32)]) -> Vec<(f64, [f32; 4])> {
    let n = (total_s / PERIOD) as usize;
    (0..n)
        .map(|i| {
            let t = (i + 1) as f64 * PERIOD;
            let mut yes = 0.0;
            for &(s, l, h) in bumps {
                if t > s && t <= s + l {
                    yes = h;
                }
            }
            (t, [1.0 - yes, 0.0, yes, 0.0])
        })
        .collect()
}

fn run(cfg: &DecisionConfig, seq: &[(f64, [f32; 4])]) -> Vec<KeywordEvent> {
    let mut d = KeywordDetector::new(cfg, &labels(), PERIOD);
    seq.iter().filter_map(|(t, p)| d.push(*t, p)).collect()
}

#[test]
fn single_bump_gives_one_event_at_the_right_time() {
    let cfg = DecisionConfig::default();
    let ev = run(&cfg, &sequence(3.0, &[(1.0, 0.5, 0.8)]));
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = &ev[0];
    assert_eq!(e.keyword, "yes");
    assert_eq!(e.label_index, 2);
    // Smoothing over 15 frames: 11 frames of 0.8 average 0.587, 12 average 0.64 >= 0.6,
    // so the event ends at 1.0 + 12 * 20 ms.
    assert_eq!(
        KeywordDetector::new(&cfg, &labels(), PERIOD).smoothing_frames(),
        15
    );
    assert!((e.end - 1.24).abs() < 1e-9, "end {}", e.end);
    // Raw posterior first rose in the frame ending at 1.02 s, which began at 1.0 s.
    assert!((e.start - 1.0).abs() < 1e-9, "start {}", e.start);
    assert!((e.score - 0.64).abs() < 1e-5, "score {}", e.score);
}

#[test]
fn two_bumps_beyond_refractory_give_two_events() {
    let cfg = DecisionConfig::default();
    let ev = run(&cfg, &sequence(5.0, &[(0.5, 0.5, 0.95), (2.5, 0.5, 0.95)]));
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev[0].end < 1.1 && ev[1].end > 2.5 && ev[1].end < 3.1);
}

#[test]
fn two_bumps_within_refractory_give_one_event() {
    let cfg = DecisionConfig::default();
    let ev = run(&cfg, &sequence(3.0, &[(0.5, 0.4, 0.95), (1.0, 0.4, 0.95)]));
    assert_eq!(ev.len(), 1, "{ev:?}");
}

#[test]
fn a_long_plateau_gives_one_event_until_the_score_falls_below_release() {
    // A model that keeps the word in its pooling window: "yes" stays at 0.9 for 3 s, far longer
    // than the refractory period; then it falls to 0 and comes back once.
    let cfg = DecisionConfig::default();
    let ev = run(&cfg, &sequence(8.0, &[(0.5, 3.0, 0.9), (5.0, 0.5, 0.9)]));
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev[0].end < 1.0 && ev[1].end > 5.0, "{ev:?}");
    // A dip to 0.4 (above release) between two plateaus does not re-arm "yes".
    let ev = run(
        &cfg,
        &sequence(6.0, &[(0.5, 1.5, 0.9), (2.0, 1.5, 0.4), (3.5, 1.5, 0.9)]),
    );
    assert_eq!(ev.len(), 1, "{ev:?}");
}

#[test]
fn release_above_threshold_is_rejected() {
    let t: toml::Table = "threshold = 0.5\nrelease = 0.6".parse().unwrap();
    let e = DecisionConfig::from_table(&t).unwrap_err().to_string();
    assert!(e.contains("release"), "{e}");
}

#[test]
fn clip_tail_is_read_and_checked() {
    let t: toml::Table = "clip_tail = 0.2".parse().unwrap();
    assert_eq!(DecisionConfig::from_table(&t).unwrap().clip_tail, 0.2);
    assert_eq!(DecisionConfig::default().clip_tail, 0.0);
    for bad in ["clip_tail = -0.1", "clip_tail = 2.5", "clip_tail = nan"] {
        let t: toml::Table = bad.parse().unwrap();
        let e = DecisionConfig::from_table(&t).unwrap_err().to_string();
        assert!(
            e.contains("clip_tail") && e.contains("0..=2 s"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn bump_below_threshold_gives_none() {
    let cfg = DecisionConfig::default();
    assert!(run(&cfg, &sequence(3.0, &[(1.0, 0.8, 0.55)])).is_empty());
}

#[test]
fn non_keywords_never_fire() {
    let cfg = DecisionConfig::default();
    // Pure silence posterior = 1.0 all along.
    assert!(run(&cfg, &sequence(3.0, &[])).is_empty());
}

#[test]
fn config_from_table_defaults_and_errors() {
    let t: toml::Table = "threshold = 0.8\nrefractory = 0.5".parse().unwrap();
    let c = DecisionConfig::from_table(&t).unwrap();
    assert_eq!(c.threshold, 0.8);
    assert_eq!(c.refractory, 0.5);
    assert_eq!(c.smoothing, DecisionConfig::default().smoothing);
    for bad in [
        "thresold = 0.5",
        "threshold = 1.5",
        "smoothing = -1.0",
        "threshold = \"x\"",
    ] {
        let t: toml::Table = bad.parse().unwrap();
        assert!(DecisionConfig::from_table(&t).is_err(), "{bad}");
    }
}

#[test]
fn the_confirm_table_takes_defaults_and_names_each_bad_field() {
    let parse = |text: &str| DecisionConfig::from_table(&toml::from_str(text).unwrap());
    let c = parse("[confirm]\nmodel = \"hello_edge_ds_cnn_l\"")
        .unwrap()
        .confirm
        .unwrap();
    assert_eq!(
        c.ends,
        sepstream_audio::ConfirmConfig::DEFAULT_ENDS.to_vec()
    );
    assert_eq!(c.min_posterior, 0.0);
    assert!(parse("").unwrap().confirm.is_none());
    for (text, named) in [
        ("[confirm]\nmodel = \"m\"\nends = [0.1]", "ends"),
        ("[confirm]\nmodel = \"m\"\nends = []", "ends"),
        (
            "[confirm]\nmodel = \"m\"\nmin_posterior = 2.0",
            "min_posterior",
        ),
        ("[confirm]\nmodel = \"\"", "model"),
        ("[confirm]\nmodel = \"m\"\nwindow = 1.0", "window"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(named), "{text:?}: {e}");
    }
}
