//! Overload: the inference stage is slowed (test hook) to 2x slower than real time for a while.
//! Capture never blocks (no ring overruns), the `audio` edge drops the oldest blocks and counts
//! them, the queue never exceeds its capacity, memory stays bounded, and once the slowdown ends the
//! pipeline catches up (fresh audio again) and detects again.
//!
//! The capture side is the real capture stage fed by a simulated microphone that calls the same
//! callback function as cpal, paced by the wall clock.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sepstream_pipeline::{
    AudioBlock, AudioInput, CaptureSource, Outbox, Pipeline, PipelineConfig, SimStep,
    SimulatedInput, Stage, StageError,
};

const RATE: u32 = 48_000;

/// A 1 kHz beep of 150 ms every 500 ms; endless until `stop_after` seconds.
fn beeps(stop_after: f64) -> SimulatedInput {
    let mut n: u64 = 0;
    let total = (stop_after * RATE as f64) as u64;
    SimulatedInput {
        rate: RATE,
        channels: 2,
        period_frames: 480,
        name: "beeps".into(),
        generator: Box::new(move |buf: &mut [f32]| {
            if n >= total {
                return SimStep::End;
            }
            for fr in buf.chunks_exact_mut(2) {
                let t = n as f64 / RATE as f64;
                let on = (t % 0.5) < 0.15;
                let v = if on {
                    (0.5 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as f32
                } else {
                    0.0
                };
                fr[0] = v;
                fr[1] = v;
                n += 1;
            }
            SimStep::Continue
        }),
    }
}

/// "Detects" beep onsets by level; records (audio time, lag behind capture).
struct BeepDetector {
    on: bool,
    hits: Arc<Mutex<Vec<(f64, Duration)>>>,
}

impl Stage for BeepDetector {
    type In = AudioBlock;
    type Out = ();
    fn process(&mut self, b: AudioBlock, _out: &mut Outbox<()>) -> Result<(), StageError> {
        let peak = b.samples().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let on = peak > 0.2;
        if on && !self.on {
            self.hits
                .lock()
                .unwrap()
                .push((b.start_time(), b.captured_at.elapsed()));
        }
        self.on = on;
        Ok(())
    }
}

fn rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn slow_inference_drops_oldest_capture_never_blocks_then_catches_up() {
    let cfg = PipelineConfig::from_toml_str(
        "[edges.audio]\ncapacity = 20\npolicy = \"drop_oldest\"\n[stages.inference]\ndeadline_ms = 10\n",
        "test",
    )
    .unwrap();
    let capture_cfg = cfg.capture;
    let mut p = Pipeline::new(cfg);
    let (atx, arx) = p.edge::<AudioBlock>("audio");
    let src = CaptureSource::new(AudioInput::Simulated(beeps(6.0)), capture_cfg);
    let status = src.status();
    let hits = Arc::new(Mutex::new(Vec::new()));
    p.add_source("capture", src, atx).unwrap();
    p.add_stage(
        "inference",
        BeepDetector {
            on: false,
            hits: hits.clone(),
        },
        arx,
        None,
    )
    .unwrap();
    let hook = p.hooks("inference").unwrap();
    let rss0 = rss_kb();
    let mut r = p.start().unwrap();

    // 1 s normal, then 2.5 s at 2x slower than real time (20 ms per 10 ms block), then normal.
    std::thread::sleep(Duration::from_millis(1000));
    let before = r.snapshot();
    hook.delay_us.store(20_000, Ordering::Relaxed);
    let slow_from = Instant::now();
    let mut max_rss = 0;
    while slow_from.elapsed() < Duration::from_millis(2500) {
        std::thread::sleep(Duration::from_millis(100));
        max_rss = max_rss.max(rss_kb().unwrap_or(0));
    }
    hook.delay_us.store(0, Ordering::Relaxed);
    let slow_end_audio = 3.5;
    let during = r.snapshot();
    assert!(r.wait_for(Duration::from_secs(10)), "pipeline did not end");
    let (report, res) = r.shutdown(Duration::from_secs(1));
    res.unwrap();

    let inf = report.stage("inference").unwrap();
    let cap = report.stage("capture").unwrap();
    eprintln!("{report}");
    // Capture never blocked: the callback never found the ring full.
    let counters = status.counters().unwrap();
    assert_eq!(counters.overflowed(), 0, "capture overran");
    assert_eq!(cap.overruns, 0);
    // Nothing dropped before the slowdown; drops during it, counted and bounded by the queue.
    let b_inf = before.stage("inference").unwrap();
    assert_eq!(b_inf.drops, 0, "drops before the slowdown");
    let d_inf = during.stage("inference").unwrap();
    assert!(
        d_inf.drops >= 50,
        "expected drops during a 2x slowdown: {d_inf}"
    );
    assert!(inf.queue_high_water <= 20, "{inf}");
    assert_eq!(
        inf.items_in + inf.drops,
        cap.items_out,
        "every block delivered or counted"
    );
    assert!(
        inf.deadline_misses > 0,
        "slow items must count as deadline misses"
    );
    // Memory stays bounded (queues are bounded): well under 64 MiB growth.
    if let (Some(a), b) = (rss0, max_rss) {
        assert!(b < a + 64 * 1024, "RSS grew from {a} kB to {b} kB");
    }
    // Caught up: beeps after the slowdown (+0.5 s to drain the queue) are detected, with the
    // detector again close behind capture.
    let hits = hits.lock().unwrap().clone();
    let late: Vec<_> = hits
        .iter()
        .filter(|(t, _)| *t > slow_end_audio + 0.5)
        .collect();
    assert!(
        late.len() >= 3,
        "beeps after the slowdown not detected: {hits:?}"
    );
    for (t, lag) in &late {
        assert!(
            *lag < Duration::from_millis(150),
            "still behind at {t:.2} s: lag {lag:?}"
        );
    }
    // During the slowdown the queue held at most 20 blocks = 200 ms of audio.
    let worst = hits.iter().map(|(_, l)| *l).max().unwrap();
    assert!(worst < Duration::from_millis(600), "worst lag {worst:?}");
}
