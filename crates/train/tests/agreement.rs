//! The candle training forward pass, sepstream-nn's offline `forward` and its streaming `step`
//! agree within 1e-4 on the same (BatchNorm-folded) weights, for every keyword architecture in configs/.

use std::path::PathBuf;

use candle_core::Tensor;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use sepstream_nn::{ModelSpec, Network};
use sepstream_train::model::KwsModel;

fn spec(name: &str) -> ModelSpec {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    ModelSpec::load(&p).expect("spec loads")
}

fn check(name: &str) {
    let spec = spec(name);
    let (w, c) = (spec.input.width, spec.input.channels);
    let model = KwsModel::new(&spec, 3).expect("model builds");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let t = 41;
    let data: Vec<f32> = (0..4 * t * w * c)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let x = Tensor::from_vec(data, (4, t, w, c), model.device()).unwrap();
    // A few training steps so BatchNorm statistics and weights are not at their initial values.
    let mut opt = AdamW::new(
        model.vars().to_vec(),
        ParamsAdamW {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    let y = Tensor::new(&[2u32, 3, 4, 5], model.device()).unwrap();
    for _ in 0..5 {
        let loss = candle_nn::loss::cross_entropy(&model.forward(&x, true).unwrap(), &y).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let bytes = model.export_safetensors().unwrap();
    let net = Network::from_spec_and_weights(spec.clone(), &bytes).expect("nn loads the export");
    let seq: Vec<f32> = x
        .narrow(0, 0, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let frame = w * c;
    // Streaming: every output frame, tagged with the input frame that produced it.
    let mut st = net.new_state();
    let mut streamed: Vec<(usize, Vec<f32>)> = Vec::new();
    for i in 0..t {
        if let Some(o) = net.step(&mut st, &seq[i * frame..(i + 1) * frame]) {
            streamed.push((i, o.to_vec()));
        }
    }
    let mut worst = 0f32;
    for &len in &[t, t - 1, 30, 17, 9] {
        let prefix =
            Tensor::from_vec(seq[..len * frame].to_vec(), (1, len, w, c), model.device()).unwrap();
        let cand: Vec<f32> = model
            .forward_probs(&prefix)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let off = net.forward(&seq[..len * frame], len);
        let n = net.output_shape().len();
        let last = &off[off.len() - n..];
        let (_, s) = streamed
            .iter()
            .rev()
            .find(|(i, _)| *i < len)
            .expect("a streamed output");
        for k in 0..n {
            worst = worst
                .max((cand[k] - last[k]).abs())
                .max((cand[k] - s[k]).abs());
        }
        assert!(cand.iter().sum::<f32>() > 0.99, "softmax output");
    }
    assert!(worst < 1e-4, "{name}: candle vs nn differ by {worst}");
}

#[test]
fn dscnn_candle_matches_nn_offline_and_streaming() {
    check("kws_dscnn.toml");
}

#[test]
fn tc_candle_matches_nn_offline_and_streaming() {
    check("kws_tc.toml");
}

#[test]
fn sep2d_candle_matches_nn_offline_and_streaming() {
    check("kws_sep2d.toml");
}

#[test]
fn tc_10ms_strided_stem_candle_matches_nn_offline_and_streaming() {
    check("kws_tc_10ms.toml");
}

#[test]
fn ds_cnn_m_causal_candle_matches_nn_offline_and_streaming() {
    check("kws_ds_cnn_m.toml");
}

/// Random features of `t` frames for `spec`, one sequence.
fn features(spec: &ModelSpec, t: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..t * spec.input.width * spec.input.channels)
        .map(|_| rng.random_range(-20.0f32..20.0))
        .collect()
}

fn probs(model: &KwsModel, seq: &[f32], t: usize) -> Vec<f32> {
    let s = model.spec();
    let x = Tensor::from_vec(
        seq.to_vec(),
        (1, t, s.input.width, s.input.channels),
        model.device(),
    )
    .unwrap();
    model
        .forward_probs(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Started from the imported DS-CNN-M's weights, the causal template computes what the engine
/// computes with the imported graph streamed (its `centered` layers only report a delay), and
/// after training steps with frozen BatchNorm its export still equals the engine's output.
#[test]
fn initial_weights_reproduce_the_imported_graph_and_train_on() {
    let template = spec("kws_ds_cnn_m.toml");
    let imported_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join("hello_edge_ds_cnn_m.toml");
    let imported = Network::load(&imported_path).expect("the imported graph loads");
    let mut model = KwsModel::new(&template, 3).unwrap();
    let t = 60;
    let seq = features(&template, t, 9);
    let random = probs(&model, &seq, t);
    model
        .init_from(&imported.weights(), &imported_path)
        .expect("the imported tensors fit the template");
    let started = probs(&model, &seq, t);
    let n = imported.output_shape().len();
    let engine = imported.forward(&seq, t);
    let engine = &engine[engine.len() - n..];
    let worst = started
        .iter()
        .zip(engine)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < 1e-4,
        "initialised candle vs imported graph: {worst}"
    );
    let moved = random
        .iter()
        .zip(engine)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        moved > 1e-3,
        "random weights already gave the graph's output"
    );

    // Train a few steps: BatchNorm stays a fixed scale and shift, so the folded export is what
    // candle computes in training and in inference alike.
    let w = template.input.width;
    let x = Tensor::from_vec(
        [seq.clone(), features(&template, t, 10)].concat(),
        (2, t, w, 1),
        model.device(),
    )
    .unwrap();
    let y = Tensor::new(&[2u32, 7], model.device()).unwrap();
    let mut opt = AdamW::new(
        model.vars().to_vec(),
        ParamsAdamW {
            lr: 1e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let train_logits: Vec<f32> = model
        .forward(&x, true)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let eval_logits: Vec<f32> = model
        .forward(&x, false)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(
        train_logits, eval_logits,
        "frozen BatchNorm uses no batch statistics"
    );
    for _ in 0..3 {
        let loss = candle_nn::loss::cross_entropy(&model.forward(&x, true).unwrap(), &y).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let trained = probs(&model, &seq, t);
    assert!(
        trained
            .iter()
            .zip(&started)
            .any(|(a, b)| (a - b).abs() > 1e-4),
        "training moved nothing"
    );
    let net =
        Network::from_spec_and_weights(template.clone(), &model.export_safetensors().unwrap())
            .unwrap();
    let off = net.forward(&seq, t);
    let worst = trained
        .iter()
        .zip(&off[off.len() - n..])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "trained export vs candle: {worst}");
}

#[test]
fn initial_weights_of_another_shape_are_refused_by_name() {
    let template = spec("kws_ds_cnn_m.toml");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join("hello_edge_ds_cnn_s.toml");
    let other = Network::load(&path).unwrap();
    let mut model = KwsModel::new(&template, 3).unwrap();
    let err = model
        .init_from(&other.weights(), &path)
        .expect_err("DS-CNN-S's tensors do not fit DS-CNN-M")
        .to_string();
    assert!(
        err.contains("hello_edge_ds_cnn_s.toml") && err.contains("`conv_1."),
        "{err}"
    );
}
