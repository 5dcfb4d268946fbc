//! Invariant 2: after warm-up, streaming steps on the reference specs and the shipped keyword
//! model's architecture allocate nothing.

use sepstream_nn::{ModelSpec, Network};
use sepstream_testkit::{count_allocations, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn config(name: &str) -> ModelSpec {
    ModelSpec::load(&sepstream_testkit::config_path(name)).expect("reference spec loads")
}

#[test]
fn ten_thousand_ds_cnn_steps_allocate_zero_bytes() {
    for name in [
        "ds_cnn_s.toml",
        "tc_sep1d.toml",
        "kws.toml",
        "kws_sep2d.toml",
    ] {
        let net = Network::random(config(name), 7).unwrap();
        let mut state = net.new_state();
        let frame: Vec<f32> = (0..net.input_shape().len())
            .map(|i| i as f32 * 0.1)
            .collect();
        for _ in 0..100 {
            net.step(&mut state, &frame);
        }
        let (outputs, stats) = count_allocations(|| {
            let mut outputs = 0usize;
            for _ in 0..10_000 {
                if net.step(&mut state, &frame).is_some() {
                    outputs += 1;
                }
            }
            outputs
        });
        assert_eq!(outputs, 10_000 / net.time_stride(), "{name}: outputs");
        assert_eq!(stats.bytes, 0, "{name}: {stats:?} during 10,000 steps");
        assert_eq!(stats.allocations, 0, "{name}: {stats:?}");
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let (_, stats) = count_allocations(|| std::hint::black_box(vec![1u8; 100]));
    assert_eq!(stats.allocations, 1);
    assert_eq!(stats.bytes, 100);
}

#[test]
fn try_step_allocates_nothing_and_names_a_frame_of_the_wrong_length() {
    let net = Network::random(config("kws.toml"), 7).unwrap();
    let (mut a, mut b) = (net.new_state(), net.new_state());
    let frame: Vec<f32> = (0..net.input_shape().len())
        .map(|i| (i as f32 * 0.3).sin())
        .collect();
    for _ in 0..100 {
        let want = net.step(&mut a, &frame).map(<[f32]>::to_vec);
        let got = net.try_step(&mut b, &frame).unwrap().map(<[f32]>::to_vec);
        assert_eq!(got, want);
    }
    let (ok, stats) = count_allocations(|| (0..1000).all(|_| net.try_step(&mut b, &frame).is_ok()));
    assert!(ok);
    assert_eq!(stats.allocations, 0, "{stats:?}");
    let err = net.try_step(&mut b, &frame[1..]).unwrap_err();
    let n = frame.len();
    assert!(
        err.to_string().contains(&format!(
            "input frame of {} values, the model takes {n}",
            n - 1
        )),
        "{err}"
    );
}

#[test]
fn a_fixed_window_forward_into_its_scratch_allocates_nothing() {
    // The imported graphs' layout: centred 2D convolutions over a fixed window.
    for name in ["hello_edge_ds_cnn_s.toml", "ds_cnn_s.toml"] {
        let net = Network::random(config(name), 3).unwrap();
        let t = 49;
        let window: Vec<f32> = (0..t * net.input_shape().len())
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let mut scratch = net.new_window_scratch(t);
        let (sum, stats) = count_allocations(|| {
            let mut sum = 0.0f32;
            for _ in 0..20 {
                sum += net.forward_window_into(&mut scratch, &window, t)[0];
            }
            sum
        });
        assert!(sum.is_finite(), "{name}");
        assert_eq!(stats.bytes, 0, "{name}: {stats:?} during 20 windows");
    }
}
