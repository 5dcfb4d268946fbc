//! A stage whose own code panics (not a test hook): the pipeline reports the panic as an error
//! naming the stage and carrying its message, every other stage is stopped through its `stop`,
//! and nothing hangs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sepstream_pipeline::{
    Flow, Outbox, Pipeline, PipelineConfig, PipelineError, Source, Stage, StageError,
};

/// Emits 0, 1, 2, ... forever, one per millisecond; records that `stop` ran.
struct Numbers {
    next: u64,
    stopped: Arc<AtomicBool>,
}

impl Source for Numbers {
    type Out = u64;
    fn poll(&mut self, out: &mut Outbox<u64>) -> Result<Flow, StageError> {
        out.send(self.next)?;
        self.next += 1;
        std::thread::sleep(Duration::from_millis(1));
        Ok(Flow::Continue)
    }
    fn stop(&mut self) -> Result<(), StageError> {
        self.stopped.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Looks each item up in a table of `table_len` entries: an out-of-range index panics, as a
/// bug in real stage code would.
struct TableLookup {
    table: Vec<u64>,
}

impl Stage for TableLookup {
    type In = u64;
    type Out = u64;
    fn process(&mut self, item: u64, out: &mut Outbox<u64>) -> Result<(), StageError> {
        let value = self.table[item as usize];
        out.send(value)?;
        Ok(())
    }
}

/// Counts what arrives; records that `stop` ran.
struct Tally {
    seen: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
}

impl Stage for Tally {
    type In = u64;
    type Out = ();
    fn process(&mut self, _: u64, _: &mut Outbox<()>) -> Result<(), StageError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn stop(&mut self) -> Result<(), StageError> {
        self.stopped.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_stage_that_panics_in_its_own_code_is_named_and_the_others_are_stopped() {
    let table_len = 25;
    let source_stopped = Arc::new(AtomicBool::new(false));
    let sink_stopped = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));

    let mut p = Pipeline::new(PipelineConfig::default());
    let (atx, arx) = p.edge::<u64>("numbers");
    let (btx, brx) = p.edge::<u64>("values");
    p.add_source(
        "capture",
        Numbers {
            next: 0,
            stopped: source_stopped.clone(),
        },
        atx,
    )
    .unwrap();
    p.add_stage(
        "inference",
        TableLookup {
            table: (0..table_len).collect(),
        },
        arx,
        Some(btx),
    )
    .unwrap();
    p.add_stage(
        "actuation",
        Tally {
            seen: seen.clone(),
            stopped: sink_stopped.clone(),
        },
        brx,
        None,
    )
    .unwrap();

    let mut running = p.start().unwrap();
    // Generous bound: the panic happens after ~25 ms of items.
    assert!(
        running.wait_for(Duration::from_secs(10)),
        "the panic was not noticed"
    );
    let t0 = Instant::now();
    let (report, result) = running.shutdown(Duration::from_secs(1));
    // The grace period is 1 s; shutdown must not wait much past it (never a hang).
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

    let err = result.unwrap_err();
    assert!(matches!(err, PipelineError::StagePanicked { .. }), "{err}");
    assert_eq!(err.stage(), Some("inference"), "{err}");
    let message = err.to_string();
    assert!(message.contains("index out of bounds"), "{message}");

    assert!(
        source_stopped.load(Ordering::SeqCst),
        "the source was not stopped"
    );
    assert!(
        sink_stopped.load(Ordering::SeqCst),
        "the sink was not stopped"
    );
    // The sink got items, and none from past the panic.
    let seen = seen.load(Ordering::SeqCst);
    assert!(seen > 0 && seen <= table_len, "{seen}");
    for stage in ["capture", "inference", "actuation"] {
        assert!(report.stage(stage).is_some(), "no report for {stage}");
    }
}
