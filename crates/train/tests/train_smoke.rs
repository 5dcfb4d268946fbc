//! CI smoke test: fifty training steps on a tiny subset of ../shared/data lower the loss.

use std::path::PathBuf;

use sepstream_nn::ModelSpec;
use sepstream_train::augment::AugmentConfig;
use sepstream_train::trainer::{train, TrainConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn loss_falls_on_a_tiny_subset() {
    let data = root().join("../shared/data/speech_commands");
    if !data.is_dir() {
        eprintln!("skipping: {} not found", data.display());
        return;
    }
    let spec = ModelSpec::load(&root().join("configs/kws_tc.toml")).expect("spec");
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
