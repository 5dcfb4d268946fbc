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
