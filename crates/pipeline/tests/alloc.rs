//! Zero allocation on the real-time paths: the capture callback (`CaptureWriter::push_interleaved`,
//! including when the ring is full) and a steady-state inference hop (`KwsStage::process_block`:
//! resampling front end + `Network::step` + keyword decisions).

use std::time::Instant;

use sepstream_audio::mic::capture_ring;
use sepstream_pipeline::capture::BLOCK_MAX;
use sepstream_pipeline::{AudioBlock, KwsModel, KwsStage};
use sepstream_testkit::count_allocations;

#[global_allocator]
static ALLOC: sepstream_testkit::CountingAlloc = sepstream_testkit::CountingAlloc;

#[test]
fn capture_callback_allocates_nothing_and_counts_overflow() {
    let (mut writer, mut reader) = capture_ring(4800).unwrap();
    let stereo_i16: Vec<i16> = (0..960).map(|i| ((i * 37) % 2000) as i16 - 1000).collect();
    let mono_f32: Vec<f32> = (0..480).map(|i| (i as f32 * 0.01).sin()).collect();
    let (_, st) = count_allocations(|| {
        for _ in 0..5 {
            writer.push_interleaved(&stereo_i16, 2);
            writer.push_interleaved(&mono_f32, 1);
        }
    });
    assert_eq!(st.bytes, 0, "callback path allocated: {st:?}");
    assert_eq!(reader.available(), 4800);
    assert_eq!(writer.counters().overflowed(), 0);
    // Ring full: the callback still does not allocate, and counts what did not fit.
    let (_, st) = count_allocations(|| writer.push_interleaved(&stereo_i16, 2));
    assert_eq!(st.bytes, 0, "overflow path allocated: {st:?}");
    assert_eq!(writer.counters().overflowed(), 480);
    assert_eq!(writer.counters().frames_in(), 5 * 960 + 480);
    // Stereo i16 is mixed to mono: first frame = mean of the two samples / 32768.
    let mut out = [0.0f32; 4];
    assert_eq!(reader.pop(&mut out), 4);
    let want = (stereo_i16[0] as f32 + stereo_i16[1] as f32) / 2.0 / 32768.0;
    assert!((out[0] - want).abs() < 1e-6, "{} vs {want}", out[0]);
}

#[test]
fn steady_state_inference_hop_allocates_nothing() {
    // A template of the repository (random weights): missing is a broken checkout, not a skip.
    let path = sepstream_testkit::config_path("kws_dscnn.toml");
    assert!(path.is_file(), "{} missing", path.display());
    let model = KwsModel::load(&path, true).unwrap();
    let mut stage = KwsStage::new(model, Default::default());
    let rate = 48_000u32;
    let block_len = 480;
    stage.prepare(rate).unwrap();
    let mut n_hits = 0usize;
    let mut make = |k: u64| {
        let mut b = AudioBlock {
            data: [0.0; BLOCK_MAX],
            len: block_len,
            start_sample: k * block_len as u64,
            rate,
            captured_at: Instant::now(),
        };
        for (i, v) in b.data[..block_len].iter_mut().enumerate() {
            let t = (k as usize * block_len + i) as f32 / rate as f32;
            *v = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.05 * ((i * 7919 % 1000) as f32 / 1000.0 - 0.5);
        }
        b
    };
    // Warm up: the first block of a stream makes nothing new (prepare did), but run 2 s anyway.
    for k in 0..200 {
        let b = make(k);
        stage.process_block(&b, |_| {}).unwrap();
    }
    let blocks: Vec<AudioBlock> = (200..500).map(&mut make).collect();
    let (_, st) = count_allocations(|| {
        for b in &blocks {
            stage.process_block(b, |_| n_hits += 1).unwrap();
        }
    });
    assert_eq!(st.bytes, 0, "3 s of steady-state hops allocated: {st:?}");
}
