//! An ensemble merged into one network outputs the softmax of the members' mean logits, offline
//! and streaming; members that do not fit together are refused with the reason.

use sepstream_nn::cost::model_cost;
use sepstream_nn::ensemble::merge;
use sepstream_nn::{ModelSpec, Network};

const SPEC_1D: &str = r#"
name = "m1d"
[input]
width = 1
channels = 6
frame_rate = 100.0
[[layers]]
name = "stem"
kind = "conv1d"
out_channels = 8
kernel = 3
stride = 2
activation = "relu"
[[layers]]
name = "sep"
kind = "separable1d"
out_channels = 7
kernel = 5
dilation = 2
activation = "relu"
[[layers]]
name = "mix"
kind = "pointwise"
out_channels = 6
activation = "relu6"
[[layers]]
name = "pool"
kind = "avgpool"
frames = 4
[[layers]]
name = "fc"
kind = "dense"
units = 5
[[layers]]
name = "probs"
kind = "softmax"
"#;

const SPEC_2D: &str = r#"
name = "m2d"
[input]
width = 9
channels = 2
frame_rate = 50.0
[[layers]]
name = "stem"
kind = "conv2d"
out_channels = 4
kernel = [3, 3]
stride = [1, 2]
activation = "relu"
[[layers]]
name = "dw"
kind = "depthwise2d"
kernel = [2, 3]
activation = "relu"
[[layers]]
name = "sep"
kind = "separable2d"
out_channels = 3
kernel = [3, 1]
stride = [1, 2]
activation = "relu"
[[layers]]
name = "fc"
kind = "dense"
units = 4
[[layers]]
name = "probs"
kind = "softmax"
"#;

fn input(t: usize, len: usize) -> Vec<f32> {
    (0..t * len)
        .map(|i| (i as f32 * 0.377).sin() * 1.5)
        .collect()
}

/// softmax(mean over members of the logits), frame by frame, from the members' offline passes.
fn expected(text: &str, members: &[Network], x: &[f32], t: usize) -> Vec<f32> {
    let mut logits_spec = ModelSpec::from_toml_str(text).unwrap();
    logits_spec.layers.pop(); // the softmax
    let mut sum: Vec<f32> = Vec::new();
    for m in members {
        let logits = Network::from_spec_and_tensors(logits_spec.clone(), &m.weights()).unwrap();
        let y = logits.forward(x, t);
        if sum.is_empty() {
            sum = vec![0.0; y.len()];
        }
        sum.iter_mut().zip(&y).for_each(|(s, v)| *s += v);
    }
    let units = members[0].output_shape().len();
    sum.chunks(units)
        .flat_map(|frame| {
            let mean: Vec<f32> = frame.iter().map(|v| v / members.len() as f32).collect();
            let max = mean.iter().cloned().fold(f32::MIN, f32::max);
            let z: f32 = mean.iter().map(|v| (v - max).exp()).sum();
            mean.into_iter()
                .map(move |v| (v - max).exp() / z)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn check(text: &str, k: usize) {
    let spec = ModelSpec::from_toml_str(text).unwrap();
    let members: Vec<Network> = (0..k)
        .map(|m| Network::random(spec.clone(), 11 + m as u64).unwrap())
        .collect();
    let merged = merge(&members).expect("members merge");
    assert_eq!(merged.output_shape(), members[0].output_shape());
    assert_eq!(merged.time_stride(), members[0].time_stride());
    assert_eq!(merged.receptive_field(), members[0].receptive_field());
    // Grouped mixing: the merged network costs exactly K members, no block-diagonal zeros.
    let (one, all) = (model_cost(&members[0]), model_cost(&merged));
    assert_eq!(all.weights, k * one.weights, "{}: weights", spec.name);
    assert_eq!(
        all.flops_per_hop_peak,
        k as u64 * one.flops_per_hop_peak,
        "{}: FLOPs",
        spec.name
    );
    for ls in merged.spec().layers.iter() {
        if ls.kind.name().starts_with("separable")
            || (ls.kind == "pointwise" && ls.name != Some("stem".into()))
        {
            assert_eq!(ls.groups, Some(k), "{}: groups of {:?}", spec.name, ls.name);
        }
    }
    let t = 37;
    let x = input(t, merged.input_shape().len());
    let want = expected(text, &members, &x, t);
    let offline = merged.forward(&x, t);
    assert_eq!(offline.len(), want.len());
    let mut state = merged.new_state();
    let mut streamed = Vec::new();
    merged.step_many(&mut state, &x, |o| streamed.extend_from_slice(o));
    assert_eq!(streamed.len(), want.len());
    for i in 0..want.len() {
        assert!(
            (offline[i] - want[i]).abs() < 1e-5 && (streamed[i] - want[i]).abs() < 1e-5,
            "{}: value {i}: offline {} streamed {} want {}",
            spec.name,
            offline[i],
            streamed[i],
            want[i]
        );
    }
    if k > 1 {
        // The members differ, so the average is not any one of them.
        let single = members[0].forward(&x, t);
        assert!(single.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3));
    }
}

#[test]
fn merged_1d_members_output_the_softmax_of_their_mean_logits() {
    check(SPEC_1D, 3);
    check(SPEC_1D, 1);
}

#[test]
fn merged_2d_members_with_a_dense_over_the_width_average_their_logits() {
    check(SPEC_2D, 4);
}

#[test]
fn members_that_do_not_fit_together_are_refused_with_the_reason() {
    let spec = ModelSpec::from_toml_str(SPEC_1D).unwrap();
    let a = Network::random(spec.clone(), 1).unwrap();

    let other = ModelSpec::from_toml_str(&SPEC_1D.replace("kernel = 5", "kernel = 3")).unwrap();
    let b = Network::random(other, 2).unwrap();
    let err = merge(&[a.clone(), b]).unwrap_err().to_string();
    assert!(
        err.contains("member 2") && err.contains("architecture"),
        "{err}"
    );

    let mut fe = toml::Table::new();
    fe.insert("hop".into(), toml::Value::Integer(160));
    let mut with_fe = spec.clone();
    with_fe.frontend = Some(fe);
    let c = Network::random(with_fe, 3).unwrap();
    let err = merge(&[a.clone(), c]).unwrap_err().to_string();
    assert!(
        err.contains("[frontend]") && err.contains("--split-seed"),
        "{err}"
    );

    let flat = SPEC_2D.replace(
        "[[layers]]\nname = \"fc\"",
        "[[layers]]\nname = \"flat\"\nkind = \"flatten\"\n[[layers]]\nname = \"fc\"",
    );
    let f = ModelSpec::from_toml_str(&flat).unwrap();
    let err = merge(&[
        Network::random(f.clone(), 1).unwrap(),
        Network::random(f, 2).unwrap(),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("flat") && err.contains("interleave"), "{err}");

    assert!(merge(&[]).is_err());
}
