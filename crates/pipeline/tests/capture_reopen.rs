//! The capture stage opens a stalled device again, as it does a microphone whose sound server
//! starved: a stall reopens it; a reopened stream that never starts is one more stall (opened
//! again), not the end of the run; a device that cannot be opened again ends the run with the
//! reason; a device whose first stream never starts ends it too. Simulated devices, real timing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sepstream_pipeline::{
    AudioBlock, AudioInput, CaptureConfig, CaptureSource, Outbox, Pipeline, PipelineConfig,
    SimStep, SimulatedInput, Stage, StageError,
};

/// Counts blocks.
struct Count(Arc<AtomicU64>);

impl Stage for Count {
    type In = AudioBlock;
    type Out = ();
    fn process(&mut self, _b: AudioBlock, _: &mut Outbox<()>) -> Result<(), StageError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A device at 16 kHz whose generator plays `periods_of_audio` periods of silence, then stalls
/// forever (None: never stalls).
fn device(periods_of_audio: Option<u64>) -> SimulatedInput {
    let mut sim = SimulatedInput::silence(16_000);
    let mut n = 0u64;
    sim.generator = Box::new(move |buf: &mut [f32]| {
        n += 1;
        match periods_of_audio {
            Some(p) if n > p => SimStep::Stall,
            _ => {
                buf.fill(0.0);
                SimStep::Continue
            }
        }
    });
    sim
}

/// Runs capture from `input` into a counter for `secs`; (blocks, reopens, error).
fn run(input: AudioInput, secs: f64) -> (u64, u64, Option<String>) {
    let cfg = CaptureConfig {
        stall_timeout_s: 0.2,
        start_timeout_s: 0.3,
        ..CaptureConfig::default()
    };
    let mut p = Pipeline::new(PipelineConfig::default());
    let (tx, rx) = p.edge::<AudioBlock>("audio");
    let source = CaptureSource::new(input, cfg);
    let status = source.status();
    let blocks = Arc::new(AtomicU64::new(0));
    p.add_source("capture", source, tx).unwrap();
    p.add_stage("count", Count(blocks.clone()), rx, None)
        .unwrap();
    let mut r = p.start().unwrap();
    r.wait_for(Duration::from_secs_f64(secs));
    let (_, result) = r.shutdown(Duration::from_secs(1));
    (
        blocks.load(Ordering::Relaxed),
        status.reopens(),
        result.err().map(|e| e.to_string()),
    )
}

#[test]
fn a_reopened_stream_that_never_starts_is_opened_again() {
    let mut opened = 0;
    let open = Box::new(move || {
        opened += 1;
        Ok(match opened {
            1 => device(Some(50)), // 0.5 s of audio, then a stall
            2 => device(Some(0)),  // opened, never starts
            _ => device(None),     // this one works
        })
    });
    let (blocks, reopens, err) = run(AudioInput::SimulatedDevice(open), 3.0);
    assert_eq!(err, None, "the run ended");
    assert_eq!(
        reopens, 2,
        "one reopen after the stall, one after the stream that never started"
    );
    // 50 blocks before the stall; the third stream runs for the rest (about 2 s)
    assert!(blocks > 150, "{blocks} blocks: audio did not resume");
}

#[test]
fn a_device_that_cannot_be_opened_again_ends_the_run_with_the_reason() {
    let mut opened = 0;
    let open = Box::new(move || {
        opened += 1;
        if opened == 1 {
            Ok(device(Some(30)))
        } else {
            Err("no such device".to_string())
        }
    });
    let (blocks, reopens, err) = run(AudioInput::SimulatedDevice(open), 5.0);
    let err = err.expect("the run goes on without a device");
    assert!(
        err.contains("no audio for") && err.contains("opening it again failed: no such device"),
        "{err}"
    );
    assert_eq!(reopens, 0);
    assert_eq!(blocks, 30);
}

#[test]
fn a_device_whose_first_stream_never_starts_ends_the_run() {
    let open = Box::new(|| Ok(device(Some(0))));
    let (blocks, reopens, err) = run(AudioInput::SimulatedDevice(open), 5.0);
    let err = err.expect("a device that never started was accepted");
    assert!(err.contains("no audio within 0.3 s"), "{err}");
    assert_eq!((blocks, reopens), (0, 0));
}
