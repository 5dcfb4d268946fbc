//! After the constructor, pushing samples through a Spotter (resampling front end, network step,
//! keyword decisions, the per-hop callback) allocates nothing, whatever the block sizes.

use sepstream_kws::{KwsModel, Spotter};
use sepstream_testkit::{count_allocations, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A tone with a little deterministic noise, `seconds` long at `rate`.
fn signal(rate: u32, seconds: f64) -> Vec<f32> {
    let n = (seconds * f64::from(rate)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.05 * ((i * 7919 % 1000) as f32 / 1000.0 - 0.5)
        })
        .collect()
}

#[test]
fn pushing_allocates_nothing_at_the_model_rate_and_resampled() {
    let model = KwsModel::bundled_default().expect("the bundled model loads");
    for rate in [model.frontend.sample_rate, 48_000, 44_100] {
        let mut spotter = Spotter::new(&model, rate).expect("spotter");
        let audio = signal(rate, 5.0);
        let (warm_up, measured) = audio.split_at(audio.len() / 2);
        spotter.push(warm_up, |_| {});
        let mut hops = 0usize;
        let mut outputs = 0usize;
        let (_, stats) = count_allocations(|| {
            // Odd block sizes, down to one sample.
            let mut rest = measured;
            for size in [1usize, 7, 160, 480, 1023, 4096].iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (block, tail) = rest.split_at((*size).min(rest.len()));
                spotter.push_hops(block, |hop| {
                    hops += 1;
                    outputs += usize::from(hop.posteriors.is_some());
                });
                rest = tail;
            }
            spotter.finish(|_| {});
            spotter.reset_at(10.0);
            spotter.push(&measured[..4800.min(measured.len())], |_| {});
        });
        assert_eq!(stats.bytes, 0, "{rate} Hz: pushing allocated {stats:?}");
        assert_eq!(stats.allocations, 0, "{rate} Hz: {stats:?}");
        assert!(
            hops > 100 && outputs > 0,
            "{rate} Hz: {hops} hops, {outputs} outputs"
        );
    }
}

#[test]
fn a_second_stage_check_allocates_nothing_when_it_runs() {
    let mut model = KwsModel::bundled_default().expect("the bundled model loads");
    let config = sepstream_kws::ConfirmConfig::with_model("hello_edge_ds_cnn_s");
    let confirm = sepstream_kws::Confirm::load(&config, None, &model.net).expect("check loads");
    model.confirm = Some(std::sync::Arc::new(confirm));
    let (samples, rate) = sepstream_audio::read_audio(
        &sepstream_testkit::repo_root().join("assets/sample_keywords.wav"),
    )
    .expect("the sample file reads");
    for input_rate in [rate, 48_000] {
        let audio = sepstream_audio::resample_clip(&samples, rate, input_rate).unwrap();
        let mut spotter = Spotter::new(&model, input_rate).expect("spotter");
        spotter.push(&audio[..input_rate as usize / 2], |_| {});
        let mut checked = 0usize;
        let (_, stats) = count_allocations(|| {
            for block in audio[input_rate as usize / 2..].chunks(333) {
                spotter.push_hops(block, |hop| {
                    checked += usize::from(hop.hit.is_some() || hop.rejected.is_some())
                });
            }
            spotter.finish(|_| {});
        });
        assert!(checked >= 3, "{input_rate} Hz: {checked} events checked");
        assert_eq!(
            stats.bytes, 0,
            "{input_rate} Hz: the check allocated {stats:?}"
        );
    }
}
