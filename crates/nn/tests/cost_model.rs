//! The cost model: the seed's formulas, hand-counted layers of the reference DS-CNN, per-second
//! scaling by the cumulative time stride, and the degrees of freedom of a separable layer.

use nalgebra::DMatrix;
use sepstream_nn::compose::khatri_rao;
use sepstream_nn::cost::{model_cost, ConvForm, SeparableComparison};
use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, InputSpec, LayerSpec, ModelSpec, Network, Size2};
use sepstream_testkit::config_path;

#[test]
fn seed_example_ratio_is_0_1137_and_reduction_88_6_percent() {
    let c = SeparableComparison::new(192, 384, 9, 1);
    assert_eq!(c.standard_weights, 9 * 192 * 384);
    assert_eq!(c.separable_weights, 9 * 192 + 192 * 384);
    assert_eq!(c.standard_flops, 2 * 663_552);
    assert_eq!(c.separable_flops, 2 * 75_456);
    assert_eq!(format!("{:.4}", c.ratio), "0.1137");
    assert_eq!(format!("{:.1}", 100.0 * c.reduction), "88.6");
    assert_eq!(c.separable_dof, 75_456 - 192);
}

#[test]
fn ratio_is_one_over_cout_plus_one_over_k2_and_ignores_h_w_and_cin() {
    let mut checked = 0;
    for &c_out in &[1usize, 2, 7, 64, 384, 1000] {
        for &taps in &[1usize, 4, 9, 25, 40] {
            let reference = 1.0 / c_out as f64 + 1.0 / taps as f64;
            for &c_in in &[1usize, 3, 16, 192, 513] {
                for &positions in &[1usize, 5, 49, 250, 640 * 480] {
                    let c = SeparableComparison::new(c_in, c_out, taps, positions);
                    assert!((c.ratio - reference).abs() < 1e-12, "{c:?}");
                    assert!((c.ratio - c.ratio_formula()).abs() < 1e-12);
                    let flops_ratio = c.separable_flops as f64 / c.standard_flops as f64;
                    assert!((flops_ratio - reference).abs() < 1e-12, "{c:?}");
                    assert_eq!(
                        c.standard_flops,
                        2 * (positions * taps * c_in * c_out) as u64
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 6 * 5 * 5 * 5);
}

#[test]
fn ds_cnn_s_costs_match_hand_counts() {
    let spec = ModelSpec::load(&config_path("ds_cnn_s.toml")).unwrap();
    let net = Network::random(spec, 1).unwrap();
    let cost = model_cost(&net);
    let by_name = |n: &str| cost.layers.iter().find(|l| l.name == n).unwrap();

    // conv1: 10x1 input, kernel 10x4, stride 2x2 -> width 5, 64 channels, 25 frames/s.
    let conv1 = by_name("conv1");
    assert_eq!(conv1.weights, 10 * 4 * 64);
    assert_eq!(conv1.params, 10 * 4 * 64 + 64);
    assert_eq!(conv1.flops_per_frame, 2 * 10 * 4 * 64 * 5);
    assert_eq!(conv1.cumulative_stride, 2);
    assert_eq!(conv1.frames_per_second, 25.0);
    assert_eq!(conv1.flops_per_second, 25.0 * 25_600.0);
    assert_eq!(conv1.form, Some(ConvForm::Standard));
    assert_eq!(conv1.state_bytes, 9 * 10 * 4);
    assert_eq!(conv1.receptive_field, 10);

    // ds1: 5x64 input, 3x3 separable to 64 channels.
    let ds1 = by_name("ds1");
    let weights = 9 * 64 + 64 * 64;
    assert_eq!(ds1.weights, weights);
    assert_eq!(ds1.params, weights + 64 + 64);
    assert_eq!(ds1.dof, Some(weights - 64));
    assert_eq!(ds1.flops_per_frame, 2 * weights as u64 * 5);
    assert_eq!(ds1.form, Some(ConvForm::Separable));
    let cmp = ds1.comparison.as_ref().unwrap();
    assert_eq!(cmp.standard_weights, 9 * 64 * 64);
    assert_eq!(cmp.standard_flops, 2 * 9 * 64 * 64 * 5);
    assert_eq!(cmp.separable_flops, ds1.flops_per_frame);
    assert!((cmp.ratio - (1.0 / 64.0 + 1.0 / 9.0)).abs() < 1e-12);
    assert_eq!(ds1.state_bytes, 2 * 5 * 64 * 4);
    assert_eq!(ds1.receptive_field, 10 + 2 * 2);
    assert_eq!(by_name("ds4").receptive_field, 10 + 4 * 2 * 2);

    let fc = by_name("fc");
    assert_eq!(fc.weights, 64 * 12);
    assert_eq!(fc.flops_per_frame, 2 * 64 * 12);
    assert_eq!(by_name("pool").flops_per_frame, 0);
    assert_eq!(by_name("probs").params, 0);

    // Totals agree with the network's own accounting.
    let params: usize = net.layers().iter().map(|l| l.params()).sum();
    assert_eq!(cost.params, params);
    assert_eq!(cost.state_bytes, net.state_bytes());
    assert_eq!(cost.receptive_field_frames, net.receptive_field());
    assert_eq!(cost.receptive_field_frames, 26 + 24 * 2);
    assert_eq!(cost.receptive_field_ms, 74.0 * 20.0);
    assert_eq!(cost.delay_frames, 0);
    assert_eq!(cost.time_stride, 2);
    let per_second: f64 = cost.layers.iter().map(|l| l.flops_per_second).sum();
    assert!((cost.flops_per_second - per_second).abs() < 1e-6);
    assert!((cost.flops_per_hop_mean * 50.0 - cost.flops_per_second).abs() < 1e-6);
    let peak: u64 = cost.layers.iter().map(|l| l.flops_per_frame).sum();
    assert_eq!(cost.flops_per_hop_peak, peak);
}

#[test]
fn per_second_counts_follow_the_cumulative_time_stride_and_delay_is_in_ms() {
    let spec = ModelSpec {
        name: "strided".into(),
        description: None,
        weights: None,
        provenance: None,
        labels: vec![],
        input: InputSpec {
            width: 1,
            channels: 4,
            frame_rate: 100.0,
        },
        frontend: None,
        decision: None,
        layers: vec![
            LayerSpec::new(LayerKind::Conv1d)
                .out_channels(8)
                .kernel(Size2::One(3))
                .stride(Size2::One(2)),
            LayerSpec::new(LayerKind::Separable1d)
                .out_channels(6)
                .kernel(Size2::One(5))
                .stride(Size2::One(3))
                .centered(true)
                .activation(Activation::Relu),
            LayerSpec::new(LayerKind::Pointwise).out_channels(2),
        ],
    };
    let net = Network::random(spec, 3).unwrap();
    let cost = model_cost(&net);
    let [c, s, p] = &cost.layers[..] else {
        panic!("three layers")
    };
    assert_eq!(c.flops_per_frame, 2 * 3 * 4 * 8);
    assert_eq!(c.flops_per_second, 50.0 * c.flops_per_frame as f64);
    assert_eq!(s.cumulative_stride, 6);
    assert_eq!(s.flops_per_frame, 2 * (5 * 8 + 8 * 6));
    assert!((s.flops_per_second - 100.0 / 6.0 * s.flops_per_frame as f64).abs() < 1e-9);
    assert_eq!(p.cumulative_stride, 6);
    assert!((p.frames_per_second - 100.0 / 6.0).abs() < 1e-12);
    // A centred 5-tap kernel after a stride of 2: (5-1)/2 = 2 of its frames = 4 input frames.
    assert_eq!(s.delay, 4);
    assert_eq!(cost.delay_frames, net.delay());
    assert_eq!(cost.delay_frames, 4);
    assert_eq!(cost.delay_ms, 40.0);
    // receptive field: 1 + 2 (conv) + 4 taps * 2 (separable, in conv outputs) = 11.
    assert_eq!(cost.receptive_field_frames, 11);
    assert_eq!(cost.receptive_field_ms, 110.0);
}

#[test]
fn tc_sep1d_cost_agrees_with_the_network() {
    let spec = ModelSpec::load(&config_path("tc_sep1d.toml")).unwrap();
    let net = Network::random(spec, 2).unwrap();
    let cost = model_cost(&net);
    assert_eq!(cost.receptive_field_frames, net.receptive_field());
    assert_eq!(cost.state_bytes, net.state_bytes());
    let tc2 = cost.layers.iter().find(|l| l.name == "tc2").unwrap();
    assert_eq!(tc2.flops_per_frame, 2 * (11 * 64 + 64 * 64));
    assert_eq!(tc2.state_bytes, 10 * 2 * 64 * 4);
    let ratio = tc2.comparison.as_ref().unwrap().ratio;
    assert!((ratio - (1.0 / 64.0 + 1.0 / 11.0)).abs() < 1e-12);
}

/// The degrees of freedom are the rank of the map (P, D) -> P[o,i] D[i,t] at a generic point:
/// its Jacobian loses exactly one direction per input channel (the scale ambiguity).
#[test]
fn separable_dof_is_the_rank_of_the_compose_map() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for &(c_out, c_in, taps) in &[(4usize, 3usize, 3usize), (5, 2, 9), (2, 4, 6), (1, 3, 4)] {
        let p: Vec<f64> = (0..c_out * c_in)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let d: Vec<f64> = (0..c_in * taps)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let n_params = c_out * c_in + c_in * taps;
        // W[(o, i, t)] = p[o, i] * d[i, t]; columns: p first, then d.
        let jac = DMatrix::<f64>::from_fn(c_out * c_in * taps, n_params, |row, col| {
            let (o, i, t) = (row / (c_in * taps), (row / taps) % c_in, row % taps);
            if col < c_out * c_in {
                if col == o * c_in + i {
                    d[i * taps + t]
                } else {
                    0.0
                }
            } else if col - c_out * c_in == i * taps + t {
                p[o * c_in + i]
            } else {
                0.0
            }
        });
        let rank = jac.rank(1e-9);
        let cmp = SeparableComparison::new(c_in, c_out, taps, 1);
        assert_eq!(rank as u64, cmp.separable_dof, "{c_out}x{c_in}x{taps}");
        assert_eq!(rank, n_params - c_in);
        // And the compose map used by the library is the one differentiated here.
        let pf: Vec<f32> = p.iter().map(|&x| x as f32).collect();
        let df: Vec<f32> = d.iter().map(|&x| x as f32).collect();
        let w = khatri_rao(&pf, &df, c_out, c_in, taps);
        for (row, &v) in w.iter().enumerate() {
            let (o, i, t) = (row / (c_in * taps), (row / taps) % c_in, row % taps);
            assert!((v as f64 - p[o * c_in + i] * d[i * taps + t]).abs() < 1e-6);
        }
    }
}
