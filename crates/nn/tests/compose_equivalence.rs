//! Compose: a separable layer with identity inner activation equals the standard convolution
//! with kernel P[o,i] D[i,x,y] and bias P b_dw + b_pw, at the edges and with strides too.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sepstream_nn::compose::{
    compose_layer, compose_parts, composed_bias, khatri_rao, ComposeError,
};
use sepstream_nn::layers::{ConvGeometry, Depthwise, Layer, Op, Pointwise, Separable};
use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, FrameShape, InputSpec, LayerSpec, ModelSpec, Network, Size2};

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * x.abs().max(1.0),
            "value {k}: {x} vs {y}"
        );
    }
}

#[test]
fn khatri_rao_layout_is_column_of_p_times_filter() {
    // P = [[1, 2], [3, 4]] (c_out 2, c_in 2), D = [[1, 0, -1], [5, 6, 7]] (taps 3).
    let p = [1.0, 2.0, 3.0, 4.0];
    let d = [1.0, 0.0, -1.0, 5.0, 6.0, 7.0];
    let w = khatri_rao(&p, &d, 2, 2, 3);
    #[rustfmt::skip]
    let expected = [
        1.0, 0.0, -1.0,   10.0, 12.0, 14.0,   // o = 0: 1 * D[0], 2 * D[1]
        3.0, 0.0, -3.0,   20.0, 24.0, 28.0,   // o = 1: 3 * D[0], 4 * D[1]
    ];
    assert_eq!(w, expected);
    // bias: P b_dw + b_pw with b_dw = [1, -1], b_pw = [0.5, 0]
    assert_eq!(
        composed_bias(&p, &[1.0, -1.0], &[0.5, 0.0]),
        vec![1.0 - 2.0 + 0.5, 3.0 - 4.0]
    );
}

/// A random separable layer with identity inner activation and the given outer activation.
fn random_separable(
    rng: &mut ChaCha8Rng,
    input: FrameShape,
    k: (usize, usize),
    s: (usize, usize),
    dilation: usize,
    c_out: usize,
    outer: Activation,
) -> Layer {
    let g = ConvGeometry::new(input, k, s, dilation, false);
    let c = input.channels;
    let dw = Depthwise::new(
        g,
        rand_vec(rng, c * k.0 * k.1),
        rand_vec(rng, c),
        Activation::Identity,
    );
    let pw = Pointwise::new(
        dw.output(),
        c_out,
        rand_vec(rng, c_out * c),
        rand_vec(rng, c_out),
        outer,
    );
    let kind = if k.1 == 1 && input.width == 1 {
        LayerKind::Separable1d
    } else {
        LayerKind::Separable2d
    };
    Layer::new("sep", kind, Separable::new(dw, pw))
}

#[test]
fn composed_standard_layer_gives_the_separable_output() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let cases = [
        // (width, c_in, (k_t, k_w), (s_t, s_w), dilation, c_out, outer activation)
        (1, 4, (3, 1), (1, 1), 1, 5, Activation::Identity),
        (1, 3, (5, 1), (2, 1), 2, 2, Activation::Relu),
        (7, 2, (3, 3), (1, 1), 1, 4, Activation::Relu6),
        (10, 3, (4, 5), (2, 2), 1, 6, Activation::Identity),
        (6, 5, (2, 4), (3, 2), 3, 3, Activation::Relu),
        (5, 1, (1, 1), (1, 1), 1, 8, Activation::Identity),
    ];
    for &(width, c_in, k, s, d, c_out, act) in &cases {
        let sep = random_separable(&mut rng, FrameShape::new(width, c_in), k, s, d, c_out, act);
        let std_layer = compose_layer(&sep).unwrap();
        assert!(matches!(std_layer.op, Op::Conv(_)));
        assert_eq!(
            std_layer.kind.name().replace("conv", "separable"),
            sep.kind.name()
        );
        assert_eq!(std_layer.output(), sep.output());
        let t = 13;
        let x = rand_vec(&mut rng, t * sep.input().len());
        let want = sep.forward(&x, t);
        close(&std_layer.forward(&x, t), &want, 1e-5);
        // The streaming path of the composed layer agrees too.
        let mut state = std_layer.new_state();
        let mut out = vec![0.0; std_layer.output().len()];
        let mut streamed = Vec::new();
        for frame in x.chunks_exact(sep.input().len()) {
            if std_layer.step(&mut state, frame, &mut out) {
                streamed.extend_from_slice(&out);
            }
        }
        close(&streamed, &want, 1e-5);
    }
}

#[test]
fn a_nonlinear_inner_activation_is_rejected_and_so_is_a_non_separable_layer() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let layer = random_separable(
        &mut rng,
        FrameShape::new(4, 2),
        (3, 3),
        (1, 1),
        1,
        3,
        Activation::Relu,
    );
    let Op::Separable(s) = &layer.op else {
        unreachable!()
    };
    let inner = s.depthwise();
    let dw = Depthwise::new(
        inner.geom().clone(),
        inner.weight().to_vec(),
        inner.bias().to_vec(),
        Activation::Relu,
    );
    let err = compose_parts("blk", &dw, s.pointwise()).unwrap_err();
    assert_eq!(
        err,
        ComposeError::NonlinearInner {
            layer: "blk".into(),
            activation: "relu"
        }
    );
    assert!(
        err.to_string().contains("identity inner activation"),
        "{err}"
    );

    let not_sep = Layer::new("pw", LayerKind::Pointwise, s.pointwise().clone());
    assert!(matches!(
        compose_layer(&not_sep),
        Err(ComposeError::NotSeparable { .. })
    ));
}

/// Composed kernels are usable as the weights of a `conv2d` layer in a spec: a network whose
/// separable layers (identity activation) are swapped for conv2d layers with the composed
/// weights gives the same output.
#[test]
fn composed_weights_load_into_a_conv2d_spec_and_give_the_same_network_output() {
    let sep = |n: &str| {
        LayerSpec::new(LayerKind::Separable2d)
            .named(n)
            .out_channels(6)
            .kernel(Size2::Two([3, 3]))
    };
    let spec = ModelSpec {
        name: "sep".into(),
        description: None,
        weights: None,
        provenance: None,
        labels: vec![],
        input: InputSpec {
            width: 8,
            channels: 2,
            frame_rate: 50.0,
        },
        frontend: None,
        decision: None,
        layers: vec![
            sep("a").stride(Size2::Two([2, 2])),
            LayerSpec::new(LayerKind::Relu).named("r"),
            sep("b").dilation(2),
        ],
    };
    let net = Network::random(spec.clone(), 5).unwrap();
    let mut weights = net.weights();
    let mut std_spec = spec.clone();
    for (ls, layer) in std_spec.layers.iter_mut().zip(net.layers()) {
        if layer.kind != "separable2d" {
            continue;
        }
        let composed = compose_layer(layer).unwrap();
        ls.kind = LayerKind::Conv2d;
        let n = &layer.name;
        weights
            .tensors
            .retain(|k, _| !k.starts_with(&format!("{n}.")));
        let Op::Conv(c) = &composed.op else {
            unreachable!()
        };
        let g = &c.geom();
        weights.insert(
            format!("{n}.weight"),
            vec![c.out_channels(), g.input.channels, g.k_t, g.k_w],
            c.weight().to_vec(),
        );
        weights.insert(
            format!("{n}.bias"),
            vec![c.out_channels()],
            c.bias().to_vec(),
        );
    }
    let std_net = Network::from_spec_and_tensors(std_spec, &weights).unwrap();
    assert_eq!(std_net.layers()[0].kind, "conv2d");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let t = 20;
    let x = rand_vec(&mut rng, t * 16);
    close(&std_net.forward(&x, t), &net.forward(&x, t), 1e-5);
    // ... and the standard layers cost more, by the seed's ratio.
    let sep_w = 9 * 2 + 2 * 6;
    let std_w = 9 * 2 * 6;
    assert_eq!(net.layers()[0].params(), sep_w + 2 + 6);
    assert_eq!(std_net.layers()[0].params(), std_w + 6);
}
