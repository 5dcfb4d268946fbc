//! The stage runtime: lifecycle order, overload policies, drops and high-water marks, deadline
//! misses, clean end of input, and shutdown on a stage error or panic (never a hang).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sepstream_pipeline::{
    Flow, Outbox, Pipeline, PipelineConfig, PipelineError, Source, Stage, StageContext, StageError,
};

/// Emits 0..n, one per poll, then finishes (or runs forever with n = u64::MAX).
struct Counter {
    next: u64,
    n: u64,
    log: Arc<Mutex<Vec<String>>>,
}

impl Source for Counter {
    type Out = u64;
    fn start(&mut self, _ctx: &StageContext) -> Result<(), StageError> {
        self.log.lock().unwrap().push("src start".into());
        Ok(())
    }
    fn poll(&mut self, out: &mut Outbox<u64>) -> Result<Flow, StageError> {
        if self.next >= self.n {
            return Ok(Flow::Finished);
        }
        out.send(self.next)?;
        self.next += 1;
        if self.n == u64::MAX {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(Flow::Continue)
    }
    fn stop(&mut self) -> Result<(), StageError> {
        self.log.lock().unwrap().push("src stop".into());
        Ok(())
    }
}

/// Sleeps `delay` per item, then forwards it.
struct Slow {
    delay: Duration,
}

impl Stage for Slow {
    type In = u64;
    type Out = u64;
    fn process(&mut self, item: u64, out: &mut Outbox<u64>) -> Result<(), StageError> {
        std::thread::sleep(self.delay);
        out.send(item)?;
        Ok(())
    }
}

/// Collects what it gets.
struct Collect {
    got: Arc<Mutex<Vec<u64>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Stage for Collect {
    type In = u64;
    type Out = ();
    fn start(&mut self, _ctx: &StageContext) -> Result<(), StageError> {
        self.log.lock().unwrap().push("sink start".into());
        Ok(())
    }
    fn process(&mut self, item: u64, _out: &mut Outbox<()>) -> Result<(), StageError> {
        self.got.lock().unwrap().push(item);
        Ok(())
    }
    fn stop(&mut self) -> Result<(), StageError> {
        self.log.lock().unwrap().push("sink stop".into());
        Ok(())
    }
}

fn cfg(text: &str) -> PipelineConfig {
    PipelineConfig::from_toml_str(text, "test").unwrap()
}

#[test]
fn end_of_input_drains_everything_in_order_and_runs_the_lifecycle() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut p = Pipeline::new(cfg(
        "[edges.a]\ncapacity = 4\npolicy = \"drop_newest\"\n[edges.b]\ncapacity = 4\npolicy = \"block\"\n",
    ));
    let (atx, arx) = p.edge::<u64>("a");
    let (btx, brx) = p.edge::<u64>("b");
    // Source is fast, but the "a" edge is drained by a fast stage so nothing is dropped... unless
    // the source outruns it: use a tiny sleep-free stage.
    p.add_source(
        "src",
        Counter {
            next: 0,
            n: 200,
            log: log.clone(),
        },
        atx,
    )
    .unwrap();
    p.add_stage(
        "mid",
        Slow {
            delay: Duration::ZERO,
        },
        arx,
        Some(btx),
    )
    .unwrap();
    p.add_stage(
        "sink",
        Collect {
            got: got.clone(),
            log: log.clone(),
        },
        brx,
        None,
    )
    .unwrap();
    let mut r = p.start().unwrap();
    assert!(r.wait_for(Duration::from_secs(10)), "pipeline did not end");
    let (report, res) = r.shutdown(Duration::from_secs(1));
    res.unwrap();
    let got = got.lock().unwrap().clone();
    let src = report.stage("src").unwrap();
    let mid = report.stage("mid").unwrap();
    // Everything produced was either delivered or counted as dropped.
    assert_eq!(src.items_out, 200);
    assert_eq!(mid.items_in + mid.drops, 200, "{report}");
    assert_eq!(got.len() as u64, mid.items_in);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert!(mid.queue_high_water <= 4);
    let log = log.lock().unwrap().clone();
    for step in ["src start", "src stop", "sink start", "sink stop"] {
        assert!(
            log.contains(&step.to_string()),
            "{step} missing from {log:?}"
        );
    }
    assert!(report.stage("sink").unwrap().latency_count > 0);
}

#[test]
fn drop_oldest_keeps_the_freshest_items_and_counts_drops() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut p = Pipeline::new(cfg(
        "[edges.a]\ncapacity = 3\npolicy = \"drop_oldest\"\n[stages.sink]\ndeadline_ms = 1\n",
    ));
    let (atx, arx) = p.edge::<u64>("a");
    p.add_source(
        "src",
        Counter {
            next: 0,
            n: 100,
            log: log.clone(),
        },
        atx,
    )
    .unwrap();
    // A slow sink: the source outruns it.
    struct SlowSink(Arc<Mutex<Vec<u64>>>);
    impl Stage for SlowSink {
        type In = u64;
        type Out = ();
        fn process(&mut self, item: u64, _: &mut Outbox<()>) -> Result<(), StageError> {
            std::thread::sleep(Duration::from_millis(3));
            self.0.lock().unwrap().push(item);
            Ok(())
        }
    }
    p.add_stage("sink", SlowSink(got.clone()), arx, None)
        .unwrap();
    let mut r = p.start().unwrap();
    assert!(r.wait_for(Duration::from_secs(10)));
    let (report, res) = r.shutdown(Duration::from_secs(1));
    res.unwrap();
    let sink = report.stage("sink").unwrap();
    let got = got.lock().unwrap().clone();
    assert!(sink.drops > 0, "{report}");
    assert_eq!(sink.items_in + sink.drops, 100, "{report}");
    assert_eq!(
        *got.last().unwrap(),
        99,
        "the newest item must survive drop_oldest"
    );
    assert!(sink.queue_high_water <= 3);
    // 3 ms per item against a 1 ms deadline: every item is a miss.
    assert_eq!(sink.deadline_misses, sink.items_in, "{report}");
    assert!(sink.p50_us >= 2500.0, "{report}");
}

#[test]
fn a_source_may_not_feed_a_blocking_edge() {
    let mut p = Pipeline::new(cfg("[edges.a]\ncapacity = 3\npolicy = \"block\"\n"));
    let (atx, _arx) = p.edge::<u64>("a");
    let err = p
        .add_source(
            "capture",
            Counter {
                next: 0,
                n: 1,
                log: Default::default(),
            },
            atx,
        )
        .unwrap_err();
    assert!(matches!(err, PipelineError::Wiring { .. }), "{err}");
    assert!(err.to_string().contains("never block"), "{err}");
}

fn endless(p: &mut Pipeline) -> Arc<AtomicU64> {
    let seen = Arc::new(AtomicU64::new(0));
    let (atx, arx) = p.edge::<u64>("a");
    let (btx, brx) = p.edge::<u64>("b");
    p.add_source(
        "capture",
        Counter {
            next: 0,
            n: u64::MAX,
            log: Default::default(),
        },
        atx,
    )
    .unwrap();
    p.add_stage(
        "inference",
        Slow {
            delay: Duration::ZERO,
        },
        arx,
        Some(btx),
    )
    .unwrap();
    struct Count(Arc<AtomicU64>);
    impl Stage for Count {
        type In = u64;
        type Out = ();
        fn process(&mut self, _: u64, _: &mut Outbox<()>) -> Result<(), StageError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
    p.add_stage("actuation", Count(seen.clone()), brx, None)
        .unwrap();
    seen
}

#[test]
fn a_failing_stage_stops_every_stage_and_is_named() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let _seen = endless(&mut p);
    p.hooks("inference")
        .unwrap()
        .fail_at_item
        .store(20, Ordering::Relaxed);
    let mut r = p.start().unwrap();
    let t0 = Instant::now();
    assert!(r.wait_for(Duration::from_secs(5)), "failure not noticed");
    let (_report, res) = r.shutdown(Duration::from_secs(1));
    assert!(t0.elapsed() < Duration::from_secs(2));
    let err = res.unwrap_err();
    assert_eq!(err.stage(), Some("inference"), "{err}");
    assert!(matches!(err, PipelineError::StageFailed { .. }), "{err}");
}

#[test]
fn a_panicking_stage_brings_the_pipeline_down_within_a_second() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let _seen = endless(&mut p);
    p.hooks("actuation")
        .unwrap()
        .panic_at_item
        .store(10, Ordering::Relaxed);
    let mut r = p.start().unwrap();
    assert!(r.wait_for(Duration::from_secs(5)), "panic not noticed");
    let t0 = Instant::now();
    let (_report, res) = r.shutdown(Duration::from_secs(1));
    assert!(t0.elapsed() < Duration::from_secs(1));
    let err = res.unwrap_err();
    assert!(matches!(err, PipelineError::StagePanicked { .. }), "{err}");
    assert_eq!(err.stage(), Some("actuation"));
    assert!(err.to_string().contains("panics at item 10"), "{err}");
}

#[test]
fn stop_request_ends_an_endless_pipeline_cleanly() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let seen = endless(&mut p);
    let r = p.start().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let (report, res) = r.shutdown(Duration::from_secs(1));
    res.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert!(seen.load(Ordering::Relaxed) > 0);
    assert_eq!(report.stages.len(), 3);
}

#[test]
fn a_stage_stuck_in_process_is_reported_not_waited_for() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let (atx, arx) = p.edge::<u64>("a");
    p.add_source(
        "capture",
        Counter {
            next: 0,
            n: u64::MAX,
            log: Default::default(),
        },
        atx,
    )
    .unwrap();
    p.add_stage(
        "stuck",
        Slow {
            delay: Duration::from_secs(5),
        },
        arx,
        None,
    )
    .unwrap();
    let r = p.start().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    let (_report, res) = r.shutdown(Duration::from_millis(300));
    assert!(t0.elapsed() < Duration::from_secs(1));
    match res {
        Err(PipelineError::Hung { stages, .. }) => assert_eq!(stages, vec!["stuck".to_string()]),
        other => panic!("expected Hung, got {other:?}"),
    }
}

#[test]
fn the_shipped_settings_are_compiled_in_and_equal_the_file() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let from_file = sepstream_pipeline::PipelineConfig::load(&root.join("configs/pipeline.toml"))
        .expect("configs/pipeline.toml");
    let shipped = sepstream_pipeline::PipelineConfig::shipped();
    assert_eq!(shipped, from_file);
    // And they are not merely the defaults of the types.
    assert_ne!(shipped, sepstream_pipeline::PipelineConfig::default());
}
