//! Row streaming equals the offline 2D forward on random depth frames and random networks, and
//! the reported delay aligns the causal rows with the centred ("same" padded) network.

use std::sync::Arc;

use proptest::prelude::*;
use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, InputSpec, LayerSpec, ModelSpec, Network, Size2};
use sepstream_testkit::check_close;
use sepstream_vision::rowstream::{offline_frame, RowStreamer};

#[derive(Clone, Debug)]
struct LayerChoice {
    kind: usize,
    out_c: usize,
    kt: usize,
    kw: usize,
    st: usize,
    sw: usize,
    dil: usize,
    centered: bool,
    act: usize,
}

fn layer_choice(allow_time_stride: bool) -> impl Strategy<Value = LayerChoice> {
    let st_max = if allow_time_stride { 2 } else { 1 };
    (
        0usize..4,
        1usize..5,
        1usize..5,
        1usize..6,
        1usize..=st_max,
        1usize..3,
        1usize..3,
        any::<bool>(),
        0usize..3,
    )
        .prop_map(
            |(kind, out_c, kt, kw, st, sw, dil, centered, act)| LayerChoice {
                kind,
                out_c,
                kt,
                kw,
                st,
                sw,
                dil,
                centered,
                act,
            },
        )
}

fn spec(width: usize, channels: usize, layers: &[LayerChoice]) -> ModelSpec {
    let acts = [Activation::Identity, Activation::Relu, Activation::Relu6];
    let layers = layers
        .iter()
        .map(|l| {
            let a = acts[l.act];
            match l.kind {
                0 => LayerSpec::new(LayerKind::Separable2d)
                    .out_channels(l.out_c)
                    .kernel(Size2::Two([l.kt, l.kw]))
                    .stride(Size2::Two([l.st, l.sw]))
                    .dilation(l.dil)
                    .centered(l.centered)
                    .activation(a),
                1 => LayerSpec::new(LayerKind::Depthwise2d)
                    .kernel(Size2::Two([l.kt, l.kw]))
                    .stride(Size2::Two([l.st, l.sw]))
                    .dilation(l.dil)
                    .centered(l.centered)
                    .activation(a),
                2 => LayerSpec::new(LayerKind::Conv2d)
                    .out_channels(l.out_c)
                    .kernel(Size2::Two([l.kt, l.kw]))
                    .stride(Size2::Two([l.st, l.sw]))
                    .dilation(l.dil)
                    .centered(l.centered)
                    .activation(a),
                _ => LayerSpec::new(LayerKind::Pointwise)
                    .out_channels(l.out_c)
                    .activation(a),
            }
        })
        .collect();
    ModelSpec {
        name: "random_rows".into(),
        description: None,
        weights: None,
        provenance: None,
        labels: vec![],
        input: InputSpec {
            width,
            channels,
            frame_rate: 3600.0,
        },
        frontend: None,
        decision: None,
        layers,
    }
}

/// A random depth frame: planes and boxes at 0.3..8 m with dropouts, as inverse depth.
fn depth_frame(seed: u64, w: usize, h: usize, c: usize) -> Vec<f32> {
    let mut s = seed | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    let base = 0.3 + 7.0 * rnd();
    let slope = rnd() * 0.1;
    let (bx, by, bz) = (
        (rnd() * w as f32) as usize,
        (rnd() * h as f32) as usize,
        0.3 + rnd() * 3.0,
    );
    let mut out = Vec::with_capacity(w * h * c);
    for y in 0..h {
        for x in 0..w {
            for _ in 0..c {
                let mut z = base + slope * y as f32;
                if x >= bx && x < bx + 5 && y >= by && y < by + 4 {
                    z = bz;
                }
                if rnd() < 0.03 {
                    z = 0.0;
                }
                out.push(if z > 0.0 { 1.0 / z } else { 0.0 });
            }
        }
    }
    out
}

/// The centred network: each conv layer run offline on its input plus `delay` zero rows at the
/// bottom, then its first `delay` rows dropped ("same" zero padding in rows); stride 1 in time.
fn centred_forward(net: &Network, frame: &[f32], h: usize) -> Vec<f32> {
    let mut x = frame.to_vec();
    for layer in net.layers() {
        let d = layer.delay();
        let n_in = layer.input().len();
        x.resize(x.len() + d * n_in, 0.0);
        let y = layer.forward(&x, h + d);
        let n_out = layer.output().len();
        x = y[d * n_out..].to_vec();
        assert_eq!(x.len(), h * n_out);
    }
    x
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Streaming (one row at a time, delay zero rows at frame end) equals the offline forward
    /// over the same padded frame, for any stack of 2D layers with strides and centring.
    #[test]
    fn row_streaming_equals_offline(
        layers in prop::collection::vec(layer_choice(true), 1..4),
        width in 4usize..24,
        channels in 1usize..3,
        height in 1usize..30,
        seed in any::<u64>(),
        net_seed in any::<u64>(),
    ) {
        let net = Network::random(spec(width, channels, &layers), net_seed).unwrap();
        let frame = depth_frame(seed, width, height, channels);
        let mut rs = RowStreamer::new(Arc::new(net.clone()));
        let mut streamed = Vec::new();
        // Two frames through the same streamer: state is reset at every frame start.
        for _ in 0..2 {
            rs.run_frame(&frame, height, &mut streamed).unwrap();
            let offline = offline_frame(&net, &frame, height);
            prop_assert_eq!(streamed.len(), rs.output_rows(height) * net.output_shape().len());
            check_close(&streamed, &offline, 1e-5).map_err(TestCaseError::fail)?;
        }
    }

    /// With the delay the layers report, causal streamed row `i + D` is the centred network's
    /// row `i`: on every row for one layer, and on rows whose receptive field stays inside the
    /// frame for a stack.
    #[test]
    fn reported_delay_aligns_streaming_with_centred_network(
        layers in prop::collection::vec(layer_choice(false), 1..4),
        width in 4usize..20,
        height in 20usize..40,
        seed in any::<u64>(),
        net_seed in any::<u64>(),
    ) {
        let net = Network::random(spec(width, 1, &layers), net_seed).unwrap();
        let d = net.delay();
        let expect_d: usize = layers
            .iter()
            .filter(|l| l.centered && l.kind != 3)
            .map(|l| (l.kt - 1) * l.dil / 2)
            .sum();
        prop_assert_eq!(d, expect_d);
        let frame = depth_frame(seed, width, height, 1);
        let mut rs = RowStreamer::new(Arc::new(net.clone()));
        let mut streamed = Vec::new();
        rs.run_frame(&frame, height, &mut streamed).unwrap();
        let centred = centred_forward(&net, &frame, height);
        let n = net.output_shape().len();
        let convs = net.layers().iter().filter(|l| l.geometry().is_some()).count();
        // One conv layer first in the network: every row. Otherwise the top rows agree only
        // if there is a single conv (rows above the frame are zero in every layer's input in
        // both), and the bottom `d` rows only if the padding rows reach the conv as zeros.
        let first_is_conv = net.layers()[0].geometry().is_some();
        let lo = if convs <= 1 { 0 } else { net.receptive_field() - 1 };
        let hi = if convs <= 1 && first_is_conv { height } else { height.saturating_sub(d) };
        for i in lo..hi {
            check_close(&streamed[(i + d) * n..(i + d + 1) * n], &centred[i * n..(i + 1) * n], 1e-5)
                .map_err(|e| TestCaseError::fail(format!("row {i} (delay {d}): {e}")))?;
        }
    }
}

#[test]
fn perception_network_streams_like_offline_on_simulated_depth() {
    use sepstream_vision::{DepthEncoding, DepthNoise, SimDepthCamera, World, WorldParams};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/depth_sectors.toml");
    let net = Network::load(&path).unwrap();
    assert_eq!(net.delay(), 2);
    assert_eq!(net.time_stride(), 2);
    let cam = SimDepthCamera::default_robot(DepthNoise::default(), 3);
    let world = World::random(&WorldParams::default(), 3);
    let pose = nalgebra::Isometry2::new(nalgebra::Vector2::new(2.0, 3.0), 0.3);
    let depth = cam.capture(&world, &pose, 1);
    let enc = DepthEncoding::default();
    let mut frame = vec![0.0; depth.data().len()];
    enc.encode_row(depth.data(), &mut frame);
    let mut rs = RowStreamer::new(Arc::new(net.clone()));
    let mut streamed = Vec::new();
    rs.run_frame(&frame, 120, &mut streamed).unwrap();
    assert_eq!(rs.output_rows(120), 61);
    check_close(&streamed, &offline_frame(&net, &frame, 120), 1e-5).unwrap();
}
