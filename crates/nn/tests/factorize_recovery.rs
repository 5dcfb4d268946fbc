//! Factorize: exact recovery of composed kernels, the canonical scaling, idempotence, the seed's
//! two-shift counterexample (relative error 1/sqrt(2)), and replacing a model's conv layer.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sepstream_nn::compose::khatri_rao;
use sepstream_nn::factorize::{
    factorize_kernel, factorize_model, FactorizeError, SIGN_TIE_TOLERANCE,
};
use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, InputSpec, LayerSpec, ModelSpec, Network, Size2};

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The sign rule of the module docs: +1 if the first near-largest entry is positive.
fn canonical_sign(d: &[f32]) -> f32 {
    let max = d.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let lead = d
        .iter()
        .position(|x| x.abs() as f64 >= max as f64 * (1.0 - SIGN_TIE_TOLERANCE))
        .unwrap();
    d[lead].signum()
}

const SHAPES: [(usize, usize, usize); 6] = [
    (4, 3, 9),
    (1, 1, 3),
    (8, 2, 1),
    (2, 5, 40),
    (16, 4, 12),
    (64, 8, 9),
];

#[test]
fn factorize_of_a_composed_kernel_recovers_it_and_its_factors_up_to_canonical_scaling() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for &(c_out, c_in, taps) in &SHAPES {
        let p = rand_vec(&mut rng, c_out * c_in);
        let d = rand_vec(&mut rng, c_in * taps);
        let w = khatri_rao(&p, &d, c_out, c_in, taps);
        let f = factorize_kernel(&w, c_out, c_in, taps).unwrap();
        assert!(f.relative_error < 1e-5, "{}", f.relative_error);
        assert!(max_abs_diff(&f.compose(), &w) < 1e-5);
        for i in 0..c_in {
            let di = &d[i * taps..(i + 1) * taps];
            let n = norm(di) as f32;
            let s = canonical_sign(di);
            let got = &f.depthwise[i * taps..(i + 1) * taps];
            assert!((norm(got) - 1.0).abs() < 1e-6, "unit-norm filter");
            let want: Vec<f32> = di.iter().map(|x| s * x / n).collect();
            assert!(
                max_abs_diff(got, &want) < 1e-5,
                "D[{i}] {got:?} vs {want:?}"
            );
            for o in 0..c_out {
                let want = s * n * p[o * c_in + i];
                let got = f.pointwise[o * c_in + i];
                assert!(
                    (got - want).abs() < 1e-5 * want.abs().max(1.0),
                    "P[{o},{i}]"
                );
            }
            // A rank-1 slice: one non-zero singular value.
            let sv = &f.singular_values[i];
            assert!(sv.windows(2).all(|w| w[0] >= w[1]), "descending {sv:?}");
            assert!(sv.iter().skip(1).all(|&s| s < 1e-5 * sv[0]));
        }
    }
}

#[test]
fn factorize_twice_gives_the_same_canonical_weights_whatever_scaling_it_started_from() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for &(c_out, c_in, taps) in &SHAPES {
        // A full-rank kernel: the first factorization already loses something.
        let w = rand_vec(&mut rng, c_out * c_in * taps);
        let f1 = factorize_kernel(&w, c_out, c_in, taps).unwrap();
        let f2 = factorize_kernel(&f1.compose(), c_out, c_in, taps).unwrap();
        assert!(max_abs_diff(&f1.pointwise, &f2.pointwise) < 1e-5);
        assert!(max_abs_diff(&f1.depthwise, &f2.depthwise) < 1e-5);
        assert!(f2.relative_error < 1e-5);
        // Rescale each channel's pair by a random non-zero factor (negative too): same result.
        let mut p = f1.pointwise.clone();
        let mut d = f1.depthwise.clone();
        for i in 0..c_in {
            let a: f32 = rng.random_range(0.2..3.0) * if rng.random() { -1.0 } else { 1.0 };
            (0..c_out).for_each(|o| p[o * c_in + i] *= a);
            d[i * taps..(i + 1) * taps].iter_mut().for_each(|x| *x /= a);
        }
        let f3 =
            factorize_kernel(&khatri_rao(&p, &d, c_out, c_in, taps), c_out, c_in, taps).unwrap();
        assert!(max_abs_diff(&f1.pointwise, &f3.pointwise) < 1e-5);
        assert!(max_abs_diff(&f1.depthwise, &f3.depthwise) < 1e-5);
    }
}

/// The seed's counterexample: one input channel must reach output 0 shifted by d1 and output 1
/// shifted by d2 != d1. Its slice [[e_d1], [e_d2]] has singular values (1, 1): no separable
/// layer gets closer than a relative error of 1/sqrt(2).
#[test]
fn two_different_shifts_from_one_channel_leave_a_relative_error_of_one_over_sqrt_two() {
    let taps = 5;
    let (d1, d2) = (1, 3);
    let mut w = vec![0.0f32; 2 * taps];
    w[d1] = 1.0; // output 0
    w[taps + d2] = 1.0; // output 1
    let f = factorize_kernel(&w, 2, 1, taps).unwrap();
    let sv = &f.singular_values[0];
    assert!(
        (sv[0] - 1.0).abs() < 1e-12 && (sv[1] - 1.0).abs() < 1e-12,
        "{sv:?}"
    );
    let expected = 1.0 / 2f64.sqrt();
    assert!(
        (f.relative_error - expected).abs() < 1e-9,
        "{}",
        f.relative_error
    );
    assert!((f.channel_errors[0] - expected).abs() < 1e-9);
    // The reported error is the actual distance of the returned separable kernel.
    let dist = norm(
        &w.iter()
            .zip(f.compose())
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>(),
    );
    assert!((dist / norm(&w) - expected).abs() < 1e-6);

    // No separable kernel does better: random ones and perturbations of the optimum.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for trial in 0..2000 {
        let (p, d) = if trial % 2 == 0 {
            (rand_vec(&mut rng, 2), rand_vec(&mut rng, taps))
        } else {
            let p: Vec<f32> = f
                .pointwise
                .iter()
                .map(|x| x + 0.05 * rng.random_range(-1.0f32..1.0))
                .collect();
            let d: Vec<f32> = f
                .depthwise
                .iter()
                .map(|x| x + 0.05 * rng.random_range(-1.0f32..1.0))
                .collect();
            (p, d)
        };
        let s = khatri_rao(&p, &d, 2, 1, taps);
        let e = norm(&w.iter().zip(&s).map(|(a, b)| a - b).collect::<Vec<_>>()) / norm(&w);
        assert!(e >= expected - 1e-6, "trial {trial}: {e} < {expected}");
    }

    // Unequal norms: shifts of weight 2 and 1 leave 1/sqrt(5).
    w[d1] = 2.0;
    let f = factorize_kernel(&w, 2, 1, taps).unwrap();
    assert!((f.relative_error - 1.0 / 5f64.sqrt()).abs() < 1e-9);
    // The same shift for both outputs is separable.
    let mut same = vec![0.0f32; 2 * taps];
    same[d1] = 1.0;
    same[taps + d1] = -3.0;
    assert!(factorize_kernel(&same, 2, 1, taps).unwrap().relative_error < 1e-9);
}

#[test]
fn error_decreases_to_zero_as_a_random_kernel_is_made_closer_to_separable() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (c_out, c_in, taps) = (12, 6, 9);
    let s = khatri_rao(
        &rand_vec(&mut rng, c_out * c_in),
        &rand_vec(&mut rng, c_in * taps),
        c_out,
        c_in,
        taps,
    );
    let r = rand_vec(&mut rng, c_out * c_in * taps);
    let mut previous = f64::INFINITY;
    let mut alpha = 4.0f32;
    let mut errors = Vec::new();
    while alpha > 1e-6 {
        let w: Vec<f32> = s.iter().zip(&r).map(|(a, b)| a + alpha * b).collect();
        let f = factorize_kernel(&w, c_out, c_in, taps).unwrap();
        // Eckart-Young: the separable S itself is a candidate, so error <= alpha ||R|| / ||W||.
        let bound = alpha as f64 * norm(&r) / norm(&w);
        assert!(f.relative_error <= bound + 1e-6, "alpha {alpha}");
        assert!(f.relative_error < previous, "alpha {alpha}: not decreasing");
        previous = f.relative_error;
        errors.push(f.relative_error);
        alpha /= 2.0;
    }
    assert!(
        errors[0] > 0.3,
        "a mostly random kernel is far from separable: {errors:?}"
    );
    assert!(previous < 1e-5, "{errors:?}");
    let exact = factorize_kernel(&s, c_out, c_in, taps).unwrap();
    assert!(exact.relative_error < 1e-6);
}

#[test]
fn zero_channels_and_bad_kernels() {
    // Channel 1 all zero: P[:,1] = 0, D[1] = e_0, no error.
    let w = [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0];
    let f = factorize_kernel(&w, 2, 2, 2).unwrap();
    assert_eq!(&f.depthwise[2..], &[1.0, 0.0]);
    assert_eq!(f.pointwise[1], 0.0);
    assert_eq!(f.pointwise[3], 0.0);
    assert_eq!(f.channel_errors[1], 0.0);
    assert!(f.relative_error < 1e-12);
    let zero = factorize_kernel(&[0.0; 6], 3, 1, 2).unwrap();
    assert_eq!(zero.relative_error, 0.0);

    assert!(matches!(
        factorize_kernel(&[1.0; 5], 2, 1, 3),
        Err(FactorizeError::KernelLength {
            expected: 6,
            actual: 5
        })
    ));
    let err = factorize_kernel(&[1.0, f32::NAN], 1, 1, 2).unwrap_err();
    assert!(
        matches!(err, FactorizeError::NonFinite { index: 1, .. }),
        "{err}"
    );
}

fn model(conv_activation: Activation, second_named: bool) -> ModelSpec {
    let mut second = LayerSpec::new(LayerKind::Separable2d)
        .out_channels(4)
        .kernel(Size2::Two([2, 3]))
        .activation(Activation::Relu);
    if second_named {
        second = second.named("conv_dw");
    }
    ModelSpec {
        name: "m".into(),
        description: None,
        weights: None,
        provenance: Some("test".into()),
        labels: vec![],
        input: InputSpec {
            width: 6,
            channels: 3,
            frame_rate: 50.0,
        },
        frontend: None,
        decision: None,
        layers: vec![
            LayerSpec::new(LayerKind::Conv2d)
                .named("conv")
                .out_channels(5)
                .kernel(Size2::Two([3, 3]))
                .stride(Size2::Two([2, 1]))
                .dilation(1)
                .activation(conv_activation),
            second, // unnamed: default name `separable2d1`, must survive the insertion
            LayerSpec::new(LayerKind::Dense).named("fc").units(3),
        ],
    }
}

/// Weights of `spec` with the conv layer's kernel made exactly separable.
fn separable_conv_weights(spec: &ModelSpec, seed: u64) -> (Network, sepstream_nn::Weights) {
    let net = Network::random(spec.clone(), seed).unwrap();
    let mut weights = net.weights();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = khatri_rao(
        &rand_vec(&mut rng, 5 * 3),
        &rand_vec(&mut rng, 3 * 9),
        5,
        3,
        9,
    );
    weights.insert("conv.weight", vec![5, 3, 3, 3], w);
    let net = Network::from_spec_and_tensors(spec.clone(), &weights).unwrap();
    (net, weights)
}

#[test]
fn factorize_model_replaces_a_relu_conv_by_depthwise_then_pointwise_with_the_same_output() {
    let spec = model(Activation::Relu, false);
    let (net, weights) = separable_conv_weights(&spec, 8);
    let fm = factorize_model(&spec, &weights, "conv").unwrap();
    assert!(fm.factorization.relative_error < 1e-5);
    assert_eq!(fm.replacement, vec!["conv_dw", "conv_pw"]);
    let kinds: Vec<&str> = fm.spec.layers.iter().map(|l| l.kind.name()).collect();
    assert_eq!(kinds, ["depthwise2d", "pointwise", "separable2d", "dense"]);
    assert_eq!(fm.spec.layers[0].activation, None, "identity depthwise");
    assert_eq!(fm.spec.layers[1].activation, Some(Activation::Relu));
    assert_eq!(fm.spec.layers[2].name.as_deref(), Some("separable2d1"));
    assert!(fm
        .weights
        .tensors
        .contains_key("separable2d1.depthwise.weight"));
    assert!(!fm.weights.tensors.contains_key("conv.weight"));
    // The written spec reads back to the same thing.
    let reread = ModelSpec::from_toml_str(&fm.spec.to_toml_string()).unwrap();
    assert_eq!(reread, fm.spec);
    let rebuilt = Network::from_spec_and_tensors(reread, &fm.weights).unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let t = 15;
    let x = rand_vec(&mut rng, t * 18);
    let want = net.forward(&x, t);
    for got in [fm.network.forward(&x, t), rebuilt.forward(&x, t)] {
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
    let params = |n: &Network| n.layers().iter().map(|l| l.params()).sum::<usize>();
    assert_eq!(
        params(&net) - params(&fm.network),
        (5 * 3 * 9 + 5) - (3 * 9 + 3 + 5 * 3 + 5)
    );
}

#[test]
fn factorize_model_makes_an_identity_conv_one_separable_layer_and_reports_bad_requests() {
    let spec = model(Activation::Identity, false);
    let (net, weights) = separable_conv_weights(&spec, 12);
    let fm = factorize_model(&spec, &weights, "conv").unwrap();
    assert_eq!(fm.replacement, vec!["conv"]);
    assert_eq!(fm.spec.layers[0].kind, "separable2d");
    assert_eq!(fm.spec.layers.len(), 3);
    let x: Vec<f32> = (0..10 * 18)
        .map(|k| ((k * 7) % 11) as f32 / 5.0 - 1.0)
        .collect();
    let (a, b) = (fm.network.forward(&x, 10), net.forward(&x, 10));
    assert!(a
        .iter()
        .zip(&b)
        .all(|(p, q)| (p - q).abs() < 1e-5 * q.abs().max(1.0)));

    match factorize_model(&spec, &weights, "nope") {
        Err(FactorizeError::UnknownLayer { known, .. }) => {
            assert_eq!(known, "conv, separable2d1, fc")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        factorize_model(&spec, &weights, "fc"),
        Err(FactorizeError::NotStandard { .. })
    ));
    let taken = model(Activation::Relu, true);
    let (_, w2) = {
        let net = Network::random(taken.clone(), 1).unwrap();
        let w = net.weights();
        (net, w)
    };
    assert!(matches!(
        factorize_model(&taken, &w2, "conv"),
        Err(FactorizeError::NameTaken { .. })
    ));
    let mut missing = weights.clone();
    missing.tensors.remove("fc.bias");
    assert!(matches!(
        factorize_model(&spec, &missing, "conv"),
        Err(FactorizeError::Nn(_))
    ));
}
