//! CI smoke test: fifty training steps on a tiny subset of ../shared/data lower the loss.

use sepstream_nn::ModelSpec;
use sepstream_testkit::repo_root;
use sepstream_train::augment::AugmentConfig;
use sepstream_train::trainer::{train, TrainConfig};

#[test]
fn loss_falls_on_a_tiny_subset_or_skip_without_shared() {
    let data = sepstream_testkit::shared_data().join("speech_commands");
    if !data.is_dir() {
        sepstream_testkit::skip(format!("{} not found", data.display()));
        return;
    }
    let spec = ModelSpec::load(&repo_root().join("configs/kws_tc.toml")).expect("spec");
    let cfg = TrainConfig {
        epochs: 10,
        batch_size: 16,
        lr: 1e-2,
        max_clips: Some(96),
        // Clean clips: with nothing random in the inputs, a falling loss is the optimizer's doing.
        augment: AugmentConfig::none(),
        ..TrainConfig::default()
    };
    let t = train(&data, &spec, &cfg, &mut |m| eprintln!("{m}")).expect("training runs");
    let l = &t.report.step_losses;
    assert!(l.len() >= 20, "{} steps", l.len());
    let first: f32 = l[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = l[l.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(
        last < first * 0.9,
        "loss did not fall: first {first}, last {last}"
    );
    // The export loads into the engine.
    let bytes = t.model.export_safetensors().expect("export");
    sepstream_nn::Network::from_spec_and_weights(spec, &bytes).expect("nn loads the export");
}

/// With weight averaging and label smoothing, the model the trainer hands back (and exports) is
/// the one it validated: the streaming engine on the export scores what the trainer reported,
/// both reading each clip's posterior `clip_tail` after its end.
#[test]
fn averaged_weights_are_what_is_validated_and_exported_or_skip_without_shared() {
    use sepstream_train::{dataset, evaluate, export};
    let data = sepstream_testkit::shared_data().join("speech_commands");
    if !data.is_dir() {
        sepstream_testkit::skip(format!("{} not found", data.display()));
        return;
    }
    let mut template = ModelSpec::load(&repo_root().join("configs/kws_tc.toml")).expect("spec");
    template
        .decision
        .get_or_insert_with(Default::default)
        .insert("clip_tail".into(), toml::Value::Float(0.2));
    let max_clips = 160;
    let cfg = TrainConfig {
        epochs: 6,
        batch_size: 16,
        lr: 1e-2,
        max_clips: Some(max_clips),
        augment: AugmentConfig::none(),
        ema: 0.9,
        label_smoothing: 0.1,
        ..TrainConfig::default()
    };
    let t = train(&data, &template, &cfg, &mut |m| eprintln!("{m}")).expect("training runs");
    let spec = export::trained_spec(&template, &t, "w.safetensors".as_ref(), "test").unwrap();
    let bytes = t.model.export_safetensors().expect("export");
    let exported_tail = spec.decision.as_ref().and_then(|d| d.get("clip_tail"));
    assert_eq!(
        exported_tail,
        Some(&toml::Value::Float(0.2)),
        "the export keeps the tail"
    );
    let net = sepstream_nn::Network::from_spec_and_weights(spec, &bytes).expect("loads");

    // The trainer's subset and split, rebuilt the same way.
    let all = dataset::scan(&data).unwrap();
    let k = all.len().div_ceil(max_clips);
    let subset: Vec<_> = all.into_iter().step_by(k).collect();
    let val = dataset::split_by_speaker(&subset, cfg.seed, cfg.val_percent).1;
    assert_eq!(val.len(), t.report.n_val);
    let r = evaluate::eval_clips(&net, &val).expect("eval");
    let one_clip = 1.0 / val.len() as f64;
    assert!(
        (r.accuracy - f64::from(t.report.best_val_acc)).abs() <= one_clip + 1e-6,
        "engine {} vs trainer {} on {} clips",
        r.accuracy,
        t.report.best_val_acc,
        val.len()
    );
    // Six epochs on clean clips learn something beyond chance (1/12) on unseen speakers.
    assert!(t.report.best_val_acc > 0.12, "{}", t.report.best_val_acc);
}

/// Training with recordings without commands: only the training speakers' recordings are read
/// (the held-out ones are left for `eval --false-accepts --val-split`), and after each epoch
/// but the last the model is streamed over them for hard negatives.
#[test]
fn negatives_come_from_training_speakers_and_are_mined_or_skip_without_shared() {
    use sepstream_train::evaluate;
    use sepstream_train::negatives::{training_files, NegativeConfig};
    let shared = sepstream_testkit::shared_data();
    let data = shared.join("speech_commands");
    let speech = shared.join("speech/librispeech");
    let words = shared.join("negatives/mycroft");
    if !data.is_dir() || !speech.is_dir() || !words.is_dir() {
        sepstream_testkit::skip(format!(
            "{}, {} or {} not found",
            data.display(),
            speech.display(),
            words.display()
        ));
        return;
    }
    let files = evaluate::audio_files(&speech).unwrap();
    let held_out = files
        .iter()
        .filter(|f| evaluate::is_held_out_recording(f, 1, 20))
        .count();
    assert!(held_out > 0 && held_out < files.len());
    let (train_files, left_out) = training_files(std::slice::from_ref(&speech), 1, 20).unwrap();
    assert_eq!(left_out, held_out);
    assert_eq!(train_files.len(), files.len() - held_out);
    for f in &train_files {
        assert!(
            !evaluate::is_held_out_recording(f, 1, 20),
            "{}",
            f.display()
        );
    }

    // A short run on the ordinary words and phrases (small, so the test stays quick).
    let (word_files, _) = training_files(std::slice::from_ref(&words), 1, 20).unwrap();
    assert!(!word_files.is_empty());
    let spec = ModelSpec::load(&repo_root().join("configs/kws_tc_10ms.toml")).expect("spec");
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 32,
        max_clips: Some(96),
        negatives: NegativeConfig {
            dirs: vec![words],
            windows_per_epoch: 48,
            mine_every: 1,
            // Low, so an untrained model's near misses are found too.
            mine_threshold: 0.05,
            mine_max: 100,
        },
        ..TrainConfig::default()
    };
    let mut lines = Vec::new();
    let t = train(&data, &spec, &cfg, &mut |m| {
        eprintln!("{m}");
        lines.push(m.to_string())
    })
    .expect("training runs");
    let loaded = format!(
        "negatives: {} recordings of training speakers",
        word_files.len()
    );
    assert!(lines.iter().any(|l| l.starts_with(&loaded)), "{lines:?}");
    let mined = lines
        .iter()
        .filter(|l| l.starts_with("hard negatives:"))
        .count();
    assert_eq!(mined, 2, "{lines:?}");
    // The split's clips plus 48 windows an epoch, in batches of 32.
    let steps = t.report.epochs[0].steps;
    assert_eq!(
        steps,
        (t.report.n_train + t.report.n_extra + 48).div_ceil(32)
    );
}

/// An imported graph with its own front end teaches through one window a clip: its posteriors
/// on the training clips are computed once and agree with most labels (a teacher fed the
/// student's features, or misaligned clips, would agree on few).
#[test]
fn a_window_teacher_reads_its_own_features_or_skip_without_shared() {
    let data = sepstream_testkit::shared_data().join("speech_commands");
    if !data.is_dir() {
        sepstream_testkit::skip(format!("{} not found", data.display()));
        return;
    }
    let spec = ModelSpec::load(&repo_root().join("configs/kws_tc_10ms.toml")).expect("spec");
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 32,
        max_clips: Some(96),
        max_steps: Some(2),
        teacher: Some(repo_root().join("configs/hello_edge_ds_cnn_s.toml")),
        ..TrainConfig::default()
    };
    let mut lines = Vec::new();
    train(&data, &spec, &cfg, &mut |m| {
        eprintln!("{m}");
        lines.push(m.to_string())
    })
    .expect("training runs");
    let line = lines
        .iter()
        .find(|l| l.contains("its own front end"))
        .unwrap_or_else(|| panic!("no teacher line in {lines:?}"));
    let agree: usize = line
        .split("agrees with the label on ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let of: usize = line
        .split(" of ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(of > 50, "{line}");
    assert!(
        agree * 10 >= of * 7,
        "the teacher agrees on too few clips: {line}"
    );
}

/// Started from the imported DS-CNN-M (`init`), the causal template validates as the imported
/// graph streams: after one step at a vanishing learning rate the trainer's held-out accuracy
/// is the engine's on the imported network read at the same tail, so the weights, the front end
/// (TensorFlow's MFCC, no normalisation) and the time alignment all came across. A template with
/// another front end is refused by name.
#[test]
fn training_starts_from_imported_weights_or_skip_without_shared() {
    use sepstream_train::{dataset, evaluate};
    let data = sepstream_testkit::shared_data().join("speech_commands");
    if !data.is_dir() {
        sepstream_testkit::skip(format!("{} not found", data.display()));
        return;
    }
    let imported_path = repo_root().join("configs/hello_edge_ds_cnn_m.toml");
    let mut template = ModelSpec::load(&repo_root().join("configs/kws_ds_cnn_m.toml")).unwrap();
    let tail = 0.36;
    template
        .decision
        .get_or_insert_with(Default::default)
        .insert("clip_tail".into(), toml::Value::Float(tail));
    let max_clips = 240;
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        lr: 1e-12,
        max_clips: Some(max_clips),
        max_steps: Some(1),
        augment: AugmentConfig::none(),
        init: Some(imported_path.clone()),
        ..TrainConfig::default()
    };
    let t = train(&data, &template, &cfg, &mut |m| eprintln!("{m}")).expect("training runs");
    assert_eq!(
        t.frontend.mean, None,
        "the imported front end has no normalisation"
    );
    let all = dataset::scan(&data).unwrap();
    let k = all.len().div_ceil(max_clips);
    let subset: Vec<_> = all.into_iter().step_by(k).collect();
    let val = dataset::split_by_speaker(&subset, cfg.seed, cfg.val_percent).1;
    let imported = sepstream_nn::Network::load(&imported_path).unwrap();
    let r = evaluate::eval_clips_with_tail(&imported, &val, tail).expect("eval");
    let one_clip = 1.0 / val.len() as f64;
    assert!(
        (r.accuracy - f64::from(t.report.best_val_acc)).abs() <= one_clip + 1e-6,
        "imported graph {} vs trainer {} on {} clips",
        r.accuracy,
        t.report.best_val_acc,
        val.len()
    );
    // The published weights know the words: far above chance (1/12) before any training.
    assert!(r.accuracy > 0.5, "{}", r.accuracy);

    let other = ModelSpec::load(&repo_root().join("configs/kws_tc_10ms.toml")).unwrap();
    let err = match train(&data, &other, &cfg, &mut |_| {}) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a template with another front end trained from DS-CNN-M's weights"),
    };
    assert!(
        err.contains("hello_edge_ds_cnn_m.toml") && err.contains("[frontend]"),
        "{err}"
    );
}
