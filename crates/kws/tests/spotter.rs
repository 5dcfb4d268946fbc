//! The Spotter's behaviour: block sizes do not matter, `reset_at` moves the timeline, the bundled
//! model finds the sample file's keywords at the times `sepstream wav` prints, and the model
//! bundle checks its parts against each other.

use sepstream_kws::{Event, KwsError, KwsModel, ModelSettings, Spotter, Trace};
use sepstream_nn::{ModelSpec, Network};
use sepstream_testkit::repo_root;

/// The posteriors (with their times) and events of `samples` pushed in blocks of `block` (0 =
/// all at once).
fn hops(model: &KwsModel, samples: &[f32], block: usize) -> (Vec<(f64, Vec<f32>)>, Vec<Event>) {
    let mut spotter = Spotter::new(model, model.frontend.sample_rate).unwrap();
    let mut trace = Trace::default();
    let labels = model.labels.clone();
    let size = if block == 0 { samples.len() } else { block };
    for chunk in samples.chunks(size) {
        spotter.push_hops(chunk, |hop| trace.record(hop, &labels));
    }
    spotter.finish_hops(|hop| trace.record(hop, &labels));
    (trace.posteriors, trace.events)
}

fn sample() -> (Vec<f32>, u32) {
    sepstream_audio::read_audio(&repo_root().join("assets/sample_keywords.wav"))
        .expect("the sample file reads")
}

#[test]
fn block_sizes_do_not_change_frames_posteriors_or_events() {
    let model = KwsModel::bundled_default().unwrap();
    let (samples, rate) = sample();
    assert_eq!(rate, model.frontend.sample_rate);
    let whole = hops(&model, &samples, 0);
    assert!(!whole.1.is_empty());
    for block in [1, 37, 160, 4096] {
        let cut = hops(&model, &samples, block);
        assert_eq!(cut.0, whole.0, "posteriors with blocks of {block}");
        assert_eq!(cut.1, whole.1, "events with blocks of {block}");
    }
}

#[test]
fn the_sample_file_gives_its_four_keywords_at_the_printed_times() {
    let model = KwsModel::bundled_default().unwrap();
    let (samples, rate) = sample();
    let mut spotter = Spotter::new(&model, rate).unwrap();
    let mut events = Vec::new();
    for chunk in samples.chunks(4096) {
        spotter.push(chunk, |h| events.push(spotter_event(&model, &h)));
    }
    spotter.finish(|h| events.push(spotter_event(&model, &h)));
    let got: Vec<String> = events
        .iter()
        .map(|e| format!("{} {:.2} {:.2} {:.3}", e.keyword, e.start, e.end, e.score))
        .collect();
    assert_eq!(
        got,
        [
            "yes 1.69 1.75 0.419",
            "stop 3.73 3.83 0.417",
            "left 5.63 5.71 0.457",
            "go 7.67 7.77 0.430"
        ]
    );
}

fn spotter_event(model: &KwsModel, hit: &sepstream_kws::KeywordHit) -> Event {
    Event::from_hit(hit, &model.labels)
}

#[test]
fn reset_at_moves_every_time_by_the_origin_and_forgets_the_past() {
    let model = KwsModel::bundled_default().unwrap();
    let (samples, rate) = sample();
    let mut spotter = Spotter::new(&model, rate).unwrap();
    let mut first = Vec::new();
    spotter.push(&samples, |h| first.push(h));
    assert!(!first.is_empty());
    // Some unrelated audio, then a reset: nothing of it may leak into the second run.
    spotter.push(&samples[..rate as usize], |_| {});
    spotter.reset_at(100.0);
    let mut second = Vec::new();
    spotter.push(&samples, |h| second.push(h));
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.label_index, b.label_index);
        assert_eq!(a.score, b.score);
        assert!((b.start - a.start - 100.0).abs() < 1e-9, "{a:?} {b:?}");
        assert!((b.end - a.end - 100.0).abs() < 1e-9, "{a:?} {b:?}");
    }
}

#[test]
fn the_bundle_reads_the_specs_settings_and_checks_its_parts() {
    let model = KwsModel::bundled_default().unwrap();
    let settings = ModelSettings::from_spec(model.spec()).unwrap();
    assert_eq!(settings.frontend, model.frontend);
    assert_eq!(settings.decision, model.decision);
    assert_eq!(model.labels, model.spec().labels);
    assert!(!model.random);
    let period = model.posterior_period();
    assert!(period > 0.0 && period <= 0.1, "{period}");

    assert!(matches!(
        KwsModel::bundled("no_such_model"),
        Err(KwsError::NotBundled { .. })
    ));

    // A spec without [frontend] gets the default front end (40 log-mel bands): a network
    // reading 10 MFCCs does not fit it.
    let mut spec = ModelSpec::load(&repo_root().join("configs/kws_dscnn.toml")).unwrap();
    spec.frontend = None;
    let net = Network::random(spec, 1).unwrap();
    assert!(matches!(
        KwsModel::from_network(net, true),
        Err(KwsError::Features {
            inputs: 10,
            features: 40,
            ..
        })
    ));

    // A spec with a bad [decision] table names the model and keeps the cause.
    let mut spec = ModelSpec::load(&repo_root().join("configs/kws_dscnn.toml")).unwrap();
    spec.decision
        .as_mut()
        .unwrap()
        .insert("threshold".into(), toml::Value::Float(2.0));
    let e = ModelSettings::from_spec(&spec).unwrap_err();
    assert!(matches!(e, KwsError::Settings { .. }), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn a_reader_at_another_rate_is_refused() {
    let model = KwsModel::bundled_default().unwrap();
    let mut spotter = Spotter::new(&model, 48_000).unwrap();
    let mut reader =
        sepstream_audio::AudioReader::open(&repo_root().join("assets/sample_keywords.wav"))
            .unwrap();
    let e = spotter.push_reader(&mut reader, |_| {}).unwrap_err();
    assert!(
        matches!(
            e,
            KwsError::InputRate {
                expected: 48_000,
                actual: 16_000
            }
        ),
        "{e}"
    );
}

/// Events and turned-down events of the sample file through `model`.
fn checked_events(model: &KwsModel) -> (Vec<Event>, Vec<Event>) {
    let (samples, rate) = sample();
    let mut spotter = Spotter::new(model, rate).unwrap();
    let (mut kept, mut rejected) = (Vec::new(), Vec::new());
    let mut on = |hop: &sepstream_kws::Hop<'_>| {
        if let Some(h) = &hop.hit {
            kept.push(spotter_event(model, h));
        }
        if let Some(h) = &hop.rejected {
            rejected.push(spotter_event(model, h));
        }
    };
    for chunk in samples.chunks(1000) {
        spotter.push_hops(chunk, &mut on);
    }
    spotter.finish_hops(&mut on);
    (kept, rejected)
}

#[test]
fn a_second_stage_check_keeps_or_turns_down_each_event_and_adds_none() {
    let plain = KwsModel::bundled_default().unwrap();
    let (all, none) = checked_events(&plain);
    assert!(none.is_empty());
    // The spec's table, read as a user writes it.
    let mut spec = plain.spec().clone();
    let mut decision = spec.decision.clone().unwrap_or_default();
    let confirm: toml::Table = toml::from_str(
        "model = \"hello_edge_ds_cnn_l\"\nends = [-0.2, -0.1, 0.0]\nmin_posterior = 0.0",
    )
    .unwrap();
    decision.insert("confirm".into(), confirm.into());
    spec.decision = Some(decision);
    let net = Network::from_spec_and_tensors(spec, &plain.net.weights()).unwrap();
    let checked = KwsModel::from_network(net, false).unwrap();
    assert_eq!(
        checked.confirm.as_ref().unwrap().name(),
        "hello_edge_ds_cnn_l"
    );
    let (kept, rejected) = checked_events(&checked);
    // Every event of the plain model is either kept or turned down, at its own time.
    let mut both: Vec<Event> = kept.iter().chain(&rejected).cloned().collect();
    both.sort_by(|a, b| a.end.total_cmp(&b.end));
    assert_eq!(both, all);
    assert!(!kept.is_empty(), "the check kept none of {all:?}");
    // A floor no posterior reaches turns every event down.
    let mut strict = checked.clone();
    let mut cfg = strict.decision.confirm.clone().unwrap();
    cfg.min_posterior = 1.0;
    cfg.ends = vec![-1.5];
    let c = sepstream_kws::Confirm::load(&cfg, None, &strict.net).unwrap();
    strict.confirm = Some(std::sync::Arc::new(c));
    let (kept_strict, _) = checked_events(&strict);
    assert!(
        kept_strict.len() < kept.len(),
        "windows 1.5 s before each event with posterior 1.0 kept {kept_strict:?}"
    );
}

#[test]
fn a_check_with_other_labels_or_no_window_is_refused_by_name() {
    let plain = KwsModel::bundled_default().unwrap();
    let config = sepstream_kws::ConfirmConfig::with_model("kws");
    let err = sepstream_kws::Confirm::load(&config, None, &plain.net).unwrap_err();
    let msg = sepstream_kws::with_causes(&err);
    assert!(msg.contains("no fixed window"), "{msg}");
    let mut other = plain.spec().clone();
    other.labels.swap(2, 3);
    let other = Network::from_spec_and_tensors(other, &plain.net.weights()).unwrap();
    let config = sepstream_kws::ConfirmConfig::with_model("hello_edge_ds_cnn_s");
    let err = sepstream_kws::Confirm::load(&config, None, &other).unwrap_err();
    let msg = sepstream_kws::with_causes(&err);
    assert!(
        msg.contains("labels") && msg.contains("hello_edge_ds_cnn_s"),
        "{msg}"
    );
}

#[test]
fn a_spec_names_its_check_by_a_file_beside_it() {
    let dir = std::env::temp_dir().join(format!("sepstream-check-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = repo_root();
    // The checking model's spec beside the checked one, its weights where they are.
    let mut check = ModelSpec::load(&root.join("configs/hello_edge_ds_cnn_s.toml")).unwrap();
    check.weights = Some(root.join("assets/hello_edge_ds_cnn_s.safetensors"));
    check.save(&dir.join("check.toml")).unwrap();
    let mut checked = ModelSpec::load(&root.join("configs/kws.toml")).unwrap();
    checked.weights = Some(root.join("assets/kws.safetensors"));
    let confirm: toml::Table = toml::from_str("model = \"check.toml\"").unwrap();
    checked
        .decision
        .get_or_insert_with(Default::default)
        .insert("confirm".into(), confirm.into());
    checked.save(&dir.join("checked.toml")).unwrap();
    // Read from another folder: the file is found beside the spec, not in the current one.
    let model = KwsModel::load(&dir.join("checked.toml"), false).unwrap();
    let c = model.confirm.as_ref().expect("the spec's check is loaded");
    assert_eq!(c.name(), check.name);
    assert_eq!(
        c.config().ends,
        sepstream_kws::ConfirmConfig::DEFAULT_ENDS.to_vec()
    );
    assert!(Spotter::new(&model, 16_000).unwrap().confirm().is_some());

    // A check file that is not there is named in the error.
    std::fs::remove_file(dir.join("check.toml")).unwrap();
    let err = KwsModel::load(&dir.join("checked.toml"), false)
        .err()
        .unwrap();
    let msg = sepstream_kws::with_causes(&err);
    assert!(msg.contains("check.toml"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}
