//! Invariant 1: random stacks of layers, fed in random chunkings, give the offline output.
//!
//! Within 1e-4 relative: the streaming kernels sum in another order (and with fused
//! multiply-adds), and a stack of random layers with large activations was seen to differ by
//! 1.4e-5.

use proptest::prelude::*;
use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, InputSpec, LayerSpec, ModelSpec, Network, Size2};
use sepstream_testkit::close;

/// One random layer, or a pointwise followed by a grouped pointwise or separable layer (the
/// first makes the channel count divisible by the groups); `two_d` picks the 2D kinds.
fn layer_strategy(two_d: bool) -> impl Strategy<Value = Vec<LayerSpec>> {
    let size = move |lo: usize, hi: usize| {
        if two_d {
            (lo..=hi, lo..=hi)
                .prop_map(|(a, b)| Size2::Two([a, b]))
                .boxed()
        } else {
            (lo..=hi).prop_map(Size2::One).boxed()
        }
    };
    let act = prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Relu),
        Just(Activation::Relu6)
    ];
    let single = prop_oneof![
        (1usize..=16, size(1, 7), size(1, 3), 1usize..=3, act.clone()).prop_map(
            move |(c, k, s, d, a)| LayerSpec::new(LayerKind::standard_conv(two_d))
                .out_channels(c)
                .kernel(k)
                .stride(s)
                .dilation(d)
                .activation(a)
        ),
        (
            size(1, 7),
            size(1, 3),
            1usize..=3,
            act.clone(),
            any::<bool>()
        )
            .prop_map(move |(k, s, d, a, centred)| LayerSpec::new(if two_d {
                LayerKind::Depthwise2d
            } else {
                LayerKind::Depthwise1d
            })
            .kernel(k)
            .stride(s)
            .dilation(d)
            .activation(a)
            .centered(centred)),
        (1usize..=16, size(1, 7), size(1, 3), 1usize..=3, act.clone()).prop_map(
            move |(c, k, s, d, a)| LayerSpec::new(LayerKind::separable(two_d))
                .out_channels(c)
                .kernel(k)
                .stride(s)
                .dilation(d)
                .activation(a)
        ),
        (1usize..=16, act).prop_map(|(c, a)| LayerSpec::new(LayerKind::Pointwise)
            .out_channels(c)
            .activation(a)),
        Just(LayerSpec::new(LayerKind::Relu6)),
        Just(LayerSpec::new(LayerKind::Flatten)),
    ]
    .prop_map(|l| vec![l]);
    let grouped = (
        1usize..=4,
        1usize..=4,
        1usize..=4,
        size(1, 5),
        1usize..=2,
        any::<bool>(),
    )
        .prop_map(move |(groups, a, b, k, d, separable)| {
            let mix = if separable {
                LayerSpec::new(LayerKind::separable(two_d))
                    .kernel(k)
                    .dilation(d)
                    .activation(Activation::Relu)
            } else {
                LayerSpec::new(LayerKind::Pointwise)
            };
            vec![
                LayerSpec::new(LayerKind::Pointwise).out_channels(groups * a),
                mix.out_channels(groups * b).groups(groups),
            ]
        });
    prop_oneof![4 => single, 1 => grouped]
}

fn model_strategy() -> impl Strategy<Value = ModelSpec> {
    any::<bool>().prop_flat_map(|two_d| {
        (
            1usize..=20,
            1usize..=16,
            prop::collection::vec(layer_strategy(two_d), 1..=4),
            prop::option::of(1usize..=6),
            prop::option::of(1usize..=8),
            any::<bool>(),
        )
            .prop_map(|(width, channels, layers, pool, dense, softmax)| {
                let mut layers: Vec<LayerSpec> = layers.into_iter().flatten().collect();
                if let Some(frames) = pool {
                    layers.push(LayerSpec::new(LayerKind::Avgpool).frames(frames));
                }
                if let Some(units) = dense {
                    layers.push(LayerSpec::new(LayerKind::Dense).units(units));
                }
                if softmax {
                    layers.push(LayerSpec::new(LayerKind::Softmax));
                }
                ModelSpec {
                    name: "random".into(),
                    description: None,
                    weights: None,
                    provenance: None,
                    labels: vec![],
                    input: InputSpec {
                        width,
                        channels,
                        frame_rate: 100.0,
                    },
                    frontend: None,
                    decision: None,
                    layers,
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn streaming_in_random_chunks_equals_offline_forward(
        spec in model_strategy(),
        t in 1usize..=40,
        seed in any::<u64>(),
        chunks in prop::collection::vec(1usize..=9, 1..=12),
    ) {
        let net = Network::random(spec, seed).expect("generated specs are valid");
        let frame_len = net.input_shape().len();
        let input: Vec<f32> = (0..t * frame_len)
            .map(|i| (i as f32 * 0.7311 + seed as f32 * 1e-9).sin() * 2.0)
            .collect();
        let offline = net.forward(&input, t);

        let mut state = net.new_state();
        let mut streamed = Vec::new();
        let mut pos = 0;
        let mut chunk = chunks.iter().cycle();
        while pos < t {
            let n = (*chunk.next().unwrap()).min(t - pos);
            net.step_many(&mut state, &input[pos * frame_len..(pos + n) * frame_len], |out| {
                streamed.extend_from_slice(out)
            });
            pos += n;
        }
        prop_assert_eq!(streamed.len(), offline.len());
        prop_assert_eq!(offline.len(), t.div_ceil(net.time_stride()) * net.output_shape().len());
        for (i, (a, b)) in streamed.iter().zip(&offline).enumerate() {
            prop_assert!(close(*a, *b, 1e-4), "value {} differs: streamed {} offline {}", i, a, b);
        }

        // reset gives the same stream again
        state.reset();
        let mut again = Vec::new();
        net.step_many(&mut state, &input, |out| again.extend_from_slice(out));
        prop_assert_eq!(again, streamed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_window_streamed_layer_by_layer_equals_the_offline_window_forward(
        spec in model_strategy(),
        t in 1usize..=40,
        seed in any::<u64>(),
    ) {
        let net = Network::random(spec, seed).expect("generated specs are valid");
        let frame_len = net.input_shape().len();
        let input: Vec<f32> = (0..t * frame_len)
            .map(|i| (i as f32 * 0.5173 + seed as f32 * 1e-9).cos() * 2.0)
            .collect();
        let offline = net.forward_window(&input, t);
        let n = net.output_shape().len();
        let last = &offline[offline.len() - n..];
        // A scratch made for longer windows serves shorter ones, and a second run over the
        // same scratch forgets the first.
        let mut scratch = net.new_window_scratch(t + 3);
        let other: Vec<f32> = input.iter().map(|v| -v).collect();
        net.forward_window_into(&mut scratch, &other, t);
        let streamed = net.forward_window_into(&mut scratch, &input, t);
        prop_assert_eq!(streamed.len(), n);
        for (i, (a, b)) in streamed.iter().zip(last).enumerate() {
            prop_assert!(close(*a, *b, 1e-4), "value {} differs: window streamed {} offline {}", i, a, b);
        }
    }
}
