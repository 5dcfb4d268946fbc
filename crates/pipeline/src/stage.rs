//! Stages on their own threads joined by bounded crossbeam channels, with a fixed lifecycle
//! (create, start, process, stop), per-item timing, overload policies on every edge, and a
//! shutdown that never hangs: a stop request drains from the sources down; a stage error or panic
//! aborts every stage; stages that do not stop within the grace period are reported, not waited for.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

use crate::config::{EdgeConfig, OverloadPolicy, PipelineConfig};
use crate::error::{PipelineError, StageError};
use crate::metrics::{new_histogram, EdgeMetrics, StageMetrics, StageSnapshot, FLUSH_EVERY};

/// How long a stage waits for input before it checks for a stop.
const POLL: Duration = Duration::from_millis(20);

/// Whether a source has more to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Call `poll` again.
    Continue,
    /// End of input: the source stops and downstream drains.
    Finished,
}

/// What a stage gets at `start`: its name and its live counters.
#[derive(Clone)]
pub struct StageContext {
    /// Stage name.
    pub name: String,
    /// The stage's counters (a capture stage adds its overruns here).
    pub metrics: Arc<StageMetrics>,
    stop: Arc<AtomicBool>,
}

impl StageContext {
    /// Whether a stop or abort was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A stage that produces items by itself (capture). `poll` may wait briefly (≲ 20 ms) when it has
/// nothing; its time is measured only when it produced something.
pub trait Source: Send + 'static {
    /// Item type it produces.
    type Out: Send + 'static;
    /// Acquire resources (open the device...). Runs on the stage's thread.
    fn start(&mut self, _ctx: &StageContext) -> Result<(), StageError> {
        Ok(())
    }
    /// Produce zero or more items into `out`.
    fn poll(&mut self, out: &mut Outbox<Self::Out>) -> Result<Flow, StageError>;
    /// Release resources. Runs on the stage's thread, also after an error.
    fn stop(&mut self) -> Result<(), StageError> {
        Ok(())
    }
}

/// A stage that transforms items (inference) or consumes them (actuation, with `Out = ()`).
pub trait Stage: Send + 'static {
    /// Input item type.
    type In: Send + 'static;
    /// Output item type (`()` for a sink).
    type Out: Send + 'static;
    /// Acquire resources. Runs on the stage's thread.
    fn start(&mut self, _ctx: &StageContext) -> Result<(), StageError> {
        Ok(())
    }
    /// Handle one item; the time it takes is the stage's latency sample.
    fn process(&mut self, item: Self::In, out: &mut Outbox<Self::Out>) -> Result<(), StageError>;
    /// Release resources. Runs on the stage's thread, also after an error.
    fn stop(&mut self) -> Result<(), StageError> {
        Ok(())
    }
}

/// The sending end of an edge, with its overload policy.
pub struct EdgeTx<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    policy: OverloadPolicy,
    metrics: Arc<EdgeMetrics>,
}

/// The receiving end of an edge.
pub struct EdgeRx<T> {
    rx: Receiver<T>,
    metrics: Arc<EdgeMetrics>,
}

impl<T> EdgeRx<T> {
    /// The edge's counters.
    pub fn metrics(&self) -> &Arc<EdgeMetrics> {
        &self.metrics
    }
}

impl<T> EdgeTx<T> {
    /// Sends by the edge's policy. Returns `false` if the item was dropped or the receiver is gone.
    /// With `Block`, waits (checking `abort` every 20 ms) for room.
    fn send(&self, mut item: T, abort: &AtomicBool) -> Result<bool, StageError> {
        let sent = match self.policy {
            OverloadPolicy::DropNewest => match self.tx.try_send(item) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.metrics.drops.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
            OverloadPolicy::DropOldest => loop {
                match self.tx.try_send(item) {
                    Ok(()) => break true,
                    Err(TrySendError::Full(it)) => {
                        if self.rx.try_recv().is_ok() {
                            self.metrics.drops.fetch_add(1, Ordering::Relaxed);
                        }
                        item = it;
                    }
                    Err(TrySendError::Disconnected(_)) => break false,
                }
            },
            OverloadPolicy::Block => loop {
                match self.tx.send_timeout(item, POLL) {
                    Ok(()) => break true,
                    Err(SendTimeoutError::Timeout(it)) => {
                        if abort.load(Ordering::Relaxed) {
                            return Err(StageError::new(format!(
                                "aborted while blocked on full edge {:?}",
                                self.metrics.name
                            )));
                        }
                        item = it;
                    }
                    Err(SendTimeoutError::Disconnected(_)) => break false,
                }
            },
        };
        if sent {
            self.metrics
                .high_water
                .fetch_max(self.tx.len() as u64, Ordering::Relaxed);
        }
        Ok(sent)
    }
}

/// A bounded channel with the capacity and overload policy of `ec`, counted as edge `name`.
pub(crate) fn bounded_edge<T>(name: &str, ec: &EdgeConfig) -> (EdgeTx<T>, EdgeRx<T>) {
    let (tx, rx) = crossbeam_channel::bounded(ec.capacity);
    let metrics = Arc::new(EdgeMetrics::new(name, ec.capacity));
    (
        EdgeTx {
            tx,
            rx: rx.clone(),
            policy: ec.policy,
            metrics: metrics.clone(),
        },
        EdgeRx { rx, metrics },
    )
}

#[cfg(feature = "zenoh")]
impl<T> EdgeRx<T> {
    /// The next item, waiting up to `timeout`.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }
    /// The next item if one is queued.
    pub(crate) fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

#[cfg(feature = "zenoh")]
impl<T> EdgeTx<T> {
    /// Sends by a policy that never waits (drop_oldest or drop_newest; the config refuses
    /// "block" where this is used), from a thread outside the pipeline. Returns whether the
    /// item was queued.
    pub(crate) fn offer(&self, item: T) -> bool {
        debug_assert!(self.policy != OverloadPolicy::Block);
        self.send(item, &AtomicBool::new(true)).unwrap_or(false)
    }
}

/// Where a stage puts its output; counts items out.
pub struct Outbox<T> {
    edge: Option<EdgeTx<T>>,
    metrics: Arc<StageMetrics>,
    abort: Arc<AtomicBool>,
}

impl<T> Outbox<T> {
    /// Sends one item downstream by the edge's overload policy (a sink's outbox discards).
    /// Returns whether it was queued.
    pub fn send(&mut self, item: T) -> Result<bool, StageError> {
        self.metrics.items_out.fetch_add(1, Ordering::Relaxed);
        match &self.edge {
            Some(e) => e.send(item, &self.abort),
            None => Ok(false),
        }
    }

    /// An outbox not connected to anything, for driving a stage by hand in tests.
    pub fn detached(name: &str) -> Self {
        Outbox {
            edge: None,
            metrics: Arc::new(StageMetrics::new(name, Duration::from_secs(1))),
            abort: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Items sent through this outbox so far.
    pub fn sent(&self) -> u64 {
        self.metrics.items_out.load(Ordering::Relaxed)
    }
}

/// Test hooks on one stage: extra time per item (to slow it artificially), a forced error or panic.
#[derive(Debug, Default)]
pub struct StageHooks {
    /// Extra sleep after each item, microseconds (0 = none). Counted in the stage's latency.
    pub delay_us: AtomicU64,
    /// Fail with an error when this many items were processed (0 = never).
    pub fail_at_item: AtomicU64,
    /// Panic when this many items were processed (0 = never).
    pub panic_at_item: AtomicU64,
}

impl StageHooks {
    fn after_item(&self, n: u64, name: &str) -> Result<(), StageError> {
        let d = self.delay_us.load(Ordering::Relaxed);
        if d > 0 {
            std::thread::sleep(Duration::from_micros(d));
        }
        let f = self.fail_at_item.load(Ordering::Relaxed);
        if f > 0 && n >= f {
            return Err(StageError::new(format!(
                "test hook: stage {name} fails at item {n}"
            )));
        }
        let p = self.panic_at_item.load(Ordering::Relaxed);
        if p > 0 && n >= p {
            panic!("test hook: stage {name} panics at item {n}");
        }
        Ok(())
    }
}

enum Exit {
    Ok,
    Failed(String),
    Panicked(String),
}

struct Control {
    /// Sources stop; downstream drains and ends when its input disconnects.
    stopping: Arc<AtomicBool>,
    /// Every stage stops now (an error somewhere).
    abort: Arc<AtomicBool>,
}

type Spawner = Box<dyn FnOnce(Sender<(usize, Exit)>) -> std::io::Result<JoinHandle<()>> + Send>;

/// A pipeline being wired: create edges, add stages, then [`Pipeline::start`].
pub struct Pipeline {
    cfg: PipelineConfig,
    ctl: Control,
    spawners: Vec<(String, Spawner)>,
    metrics: Vec<Arc<StageMetrics>>,
    hooks: Vec<(String, Arc<StageHooks>)>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

impl Pipeline {
    /// A new, empty pipeline using `cfg` for edge and stage settings.
    pub fn new(cfg: PipelineConfig) -> Self {
        Pipeline {
            cfg,
            ctl: Control {
                stopping: Arc::new(AtomicBool::new(false)),
                abort: Arc::new(AtomicBool::new(false)),
            },
            spawners: Vec::new(),
            metrics: Vec::new(),
            hooks: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// A bounded edge named `name`, with capacity and policy from the config.
    pub fn edge<T: Send + 'static>(&self, name: &str) -> (EdgeTx<T>, EdgeRx<T>) {
        bounded_edge(name, &self.cfg.edge(name))
    }

    fn new_stage(&mut self, name: &str) -> (Arc<StageMetrics>, Arc<StageHooks>, StageContext) {
        let deadline = Duration::from_secs_f64(self.cfg.stage(name).deadline_ms / 1e3);
        let m = Arc::new(StageMetrics::new(name, deadline));
        let h = Arc::new(StageHooks::default());
        self.metrics.push(m.clone());
        self.hooks.push((name.into(), h.clone()));
        let ctx = StageContext {
            name: name.into(),
            metrics: m.clone(),
            stop: self.ctl.stopping.clone(),
        };
        (m, h, ctx)
    }

    fn outbox<T>(&self, edge: Option<EdgeTx<T>>, m: &Arc<StageMetrics>) -> Outbox<T> {
        Outbox {
            edge,
            metrics: m.clone(),
            abort: self.ctl.abort.clone(),
        }
    }

    /// Adds a source feeding `out`. Its edge must not block: a capture side never waits.
    pub fn add_source<S: Source>(
        &mut self,
        name: &str,
        mut source: S,
        out: EdgeTx<S::Out>,
    ) -> Result<(), PipelineError> {
        if out.policy == OverloadPolicy::Block {
            return Err(PipelineError::Wiring {
                edge: out.metrics.name.clone(),
                reason: format!(
                    "fed by source {name:?}: policy \"block\" is not allowed (capture must never block); use drop_oldest or drop_newest"
                ),
            });
        }
        let (m, hooks, ctx) = self.new_stage(name);
        let mut outbox = self.outbox(Some(out), &m);
        let stopping = self.ctl.stopping.clone();
        let abort = self.ctl.abort.clone();
        let tname = name.to_string();
        let spawner: Spawner = Box::new(move |done: Sender<(usize, Exit)>| {
            std::thread::Builder::new()
                .name(tname.clone())
                .spawn(move || {
                    let run = || -> Result<(), StageError> {
                        source.start(&ctx)?;
                        let mut local = new_histogram();
                        let mut last_flush = Instant::now();
                        let mut produced = 0u64;
                        let res = loop {
                            if stopping.load(Ordering::Relaxed) || abort.load(Ordering::Relaxed) {
                                break Ok(());
                            }
                            let before = outbox.sent();
                            let t0 = Instant::now();
                            let flow = match source.poll(&mut outbox) {
                                Ok(f) => f,
                                Err(e) => break Err(e),
                            };
                            let n = outbox.sent() - before;
                            if n > 0 {
                                let dt = t0.elapsed().as_nanos() as u64;
                                local.saturating_record(dt);
                                m.items_in.fetch_add(n, Ordering::Relaxed);
                                if dt > m.deadline_ns {
                                    m.deadline_misses.fetch_add(1, Ordering::Relaxed);
                                }
                                produced += n;
                                if let Err(e) = hooks.after_item(produced, &tname) {
                                    break Err(e);
                                }
                            }
                            if last_flush.elapsed() >= FLUSH_EVERY {
                                m.flush(&mut local);
                                last_flush = Instant::now();
                            }
                            if flow == Flow::Finished {
                                break Ok(());
                            }
                        };
                        m.flush(&mut local);
                        let stopped = source.stop();
                        drop(outbox);
                        res.and(stopped)
                    };
                    report(run, done, &tname);
                })
        });
        self.spawners.push((name.into(), spawner));
        Ok(())
    }

    /// Adds a stage reading `input` and writing `out` (`None` for a sink).
    pub fn add_stage<S: Stage>(
        &mut self,
        name: &str,
        mut stage: S,
        input: EdgeRx<S::In>,
        out: Option<EdgeTx<S::Out>>,
    ) -> Result<(), PipelineError> {
        let (m, hooks, ctx) = self.new_stage(name);
        if let Ok(mut i) = m.input.lock() {
            *i = Some(input.metrics.clone());
        }
        let mut outbox = self.outbox(out, &m);
        let abort = self.ctl.abort.clone();
        let tname = name.to_string();
        let spawner: Spawner = Box::new(move |done: Sender<(usize, Exit)>| {
            std::thread::Builder::new()
                .name(tname.clone())
                .spawn(move || {
                    let run = || -> Result<(), StageError> {
                        stage.start(&ctx)?;
                        let mut local = new_histogram();
                        let mut last_flush = Instant::now();
                        let mut n = 0u64;
                        let res = loop {
                            if abort.load(Ordering::Relaxed) {
                                break Ok(());
                            }
                            match input.rx.recv_timeout(POLL) {
                                Ok(item) => {
                                    m.items_in.fetch_add(1, Ordering::Relaxed);
                                    n += 1;
                                    let t0 = Instant::now();
                                    let r = stage
                                        .process(item, &mut outbox)
                                        .and_then(|_| hooks.after_item(n, &tname));
                                    let dt = t0.elapsed().as_nanos() as u64;
                                    local.saturating_record(dt);
                                    if dt > m.deadline_ns {
                                        m.deadline_misses.fetch_add(1, Ordering::Relaxed);
                                    }
                                    if let Err(e) = r {
                                        break Err(e);
                                    }
                                }
                                Err(RecvTimeoutError::Timeout) => {}
                                Err(RecvTimeoutError::Disconnected) => break Ok(()),
                            }
                            if last_flush.elapsed() >= FLUSH_EVERY {
                                m.flush(&mut local);
                                last_flush = Instant::now();
                            }
                        };
                        m.flush(&mut local);
                        let stopped = stage.stop();
                        drop(outbox);
                        res.and(stopped)
                    };
                    report(run, done, &tname);
                })
        });
        self.spawners.push((name.into(), spawner));
        Ok(())
    }

    /// The test hooks of stage `name`.
    pub fn hooks(&self, name: &str) -> Option<Arc<StageHooks>> {
        self.hooks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.clone())
    }

    /// Spawns every stage's thread.
    pub fn start(self) -> Result<Running, PipelineError> {
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<(usize, Exit)>();
        let mut names = Vec::new();
        let mut handles = Vec::new();
        let Pipeline {
            ctl,
            spawners,
            metrics,
            hooks,
            ..
        } = self;
        for (i, (name, spawn)) in spawners.into_iter().enumerate() {
            // Each thread reports (its index, exit) through a forwarding sender.
            let (tx_i, rx_i) = crossbeam_channel::bounded::<(usize, Exit)>(1);
            let fwd = done_tx.clone();
            let h = spawn(tx_i).map_err(|e| {
                ctl.abort.store(true, Ordering::SeqCst);
                PipelineError::Setup(format!("cannot spawn the thread of stage {name:?}: {e}"))
            })?;
            // A tiny forwarder avoids threading the index through every closure.
            std::thread::spawn(move || {
                if let Ok((_, exit)) = rx_i.recv() {
                    let _ = fwd.send((i, exit));
                } else {
                    let _ = fwd.send((i, Exit::Panicked("thread ended without a report".into())));
                }
            });
            names.push(name);
            handles.push(Some(h));
        }
        let n = names.len();
        Ok(Running {
            ctl,
            names,
            handles,
            exited: vec![false; n],
            first_error: None,
            done_rx,
            metrics,
            hooks,
        })
    }
}

fn report(run: impl FnOnce() -> Result<(), StageError>, done: Sender<(usize, Exit)>, _name: &str) {
    let exit = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => Exit::Ok,
        Ok(Err(e)) => Exit::Failed(e.message),
        Err(p) => Exit::Panicked(panic_message(&*p)),
    };
    let _ = done.send((0, exit));
}

/// Asks a running pipeline to stop; cheap to clone, usable from a signal handler thread.
#[derive(Clone)]
pub struct StopHandle {
    stopping: Arc<AtomicBool>,
}

impl StopHandle {
    /// Sources stop, downstream drains, the pipeline ends.
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was requested.
    pub fn is_stop_requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Final counters of every stage.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PipelineReport {
    /// One snapshot per stage, in wiring order.
    pub stages: Vec<StageSnapshot>,
}

impl PipelineReport {
    /// The snapshot of stage `name`.
    pub fn stage(&self, name: &str) -> Option<&StageSnapshot> {
        self.stages.iter().find(|s| s.stage == name)
    }
}

impl std::fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.stages {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}

/// A started pipeline.
pub struct Running {
    ctl: Control,
    names: Vec<String>,
    handles: Vec<Option<JoinHandle<()>>>,
    exited: Vec<bool>,
    first_error: Option<PipelineError>,
    done_rx: Receiver<(usize, Exit)>,
    metrics: Vec<Arc<StageMetrics>>,
    hooks: Vec<(String, Arc<StageHooks>)>,
}

impl Running {
    /// A handle that requests a stop.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stopping: self.ctl.stopping.clone(),
        }
    }

    /// Requests a stop (sources stop, downstream drains).
    pub fn request_stop(&self) {
        self.ctl.stopping.store(true, Ordering::SeqCst);
    }

    /// Counters of every stage now.
    pub fn snapshot(&self) -> PipelineReport {
        PipelineReport {
            stages: self.metrics.iter().map(|m| m.snapshot()).collect(),
        }
    }

    /// The test hooks of stage `name`.
    pub fn hooks(&self, name: &str) -> Option<Arc<StageHooks>> {
        self.hooks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.clone())
    }

    /// The first stage error, if any stage failed or panicked so far.
    pub fn error(&self) -> Option<&PipelineError> {
        self.first_error.as_ref()
    }

    fn note_exit(&mut self, i: usize, exit: Exit) {
        if i < self.exited.len() {
            self.exited[i] = true;
        }
        let stage = self.names.get(i).cloned().unwrap_or_default();
        let err = match exit {
            Exit::Ok => None,
            Exit::Failed(message) => Some(PipelineError::StageFailed { stage, message }),
            Exit::Panicked(message) => Some(PipelineError::StagePanicked { stage, message }),
        };
        if let Some(e) = err {
            self.ctl.abort.store(true, Ordering::SeqCst);
            self.ctl.stopping.store(true, Ordering::SeqCst);
            if self.first_error.is_none() {
                self.first_error = Some(e);
            }
        }
    }

    /// Whether every stage has ended.
    pub fn all_exited(&self) -> bool {
        self.exited.iter().all(|&e| e)
    }

    /// Waits up to `timeout` for the pipeline to end by itself (end of input) or to fail.
    /// Returns `true` if it has ended or failed.
    pub fn wait_for(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.all_exited() || self.first_error.is_some() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.done_rx.recv_timeout(left) {
                Ok((i, exit)) => self.note_exit(i, exit),
                Err(_) => return self.all_exited() || self.first_error.is_some(),
            }
        }
    }

    /// Requests a stop and waits up to `grace` for every stage to end. Returns the final counters
    /// and the first error (a stage failure or panic, or stages that did not stop in time).
    pub fn shutdown(mut self, grace: Duration) -> (PipelineReport, Result<(), PipelineError>) {
        self.request_stop();
        let deadline = Instant::now() + grace;
        // After a stop request sources end within one poll, downstream drains its bounded queue;
        // past half the grace period everything is aborted.
        let mut aborted = self.ctl.abort.load(Ordering::SeqCst);
        while !self.all_exited() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if !aborted && deadline - now < grace / 2 {
                self.ctl.abort.store(true, Ordering::SeqCst);
                aborted = true;
            }
            let wait = (deadline - now).min(Duration::from_millis(20));
            if let Ok((i, exit)) = self.done_rx.recv_timeout(wait) {
                self.note_exit(i, exit);
            }
        }
        for (i, h) in self.handles.iter_mut().enumerate() {
            if self.exited[i] {
                if let Some(h) = h.take() {
                    let _ = h.join();
                }
            }
        }
        let hung: Vec<String> = self
            .names
            .iter()
            .zip(&self.exited)
            .filter(|(_, &e)| !e)
            .map(|(n, _)| n.clone())
            .collect();
        let report = self.snapshot();
        let result = match self.first_error.take() {
            Some(e) => Err(e),
            None if !hung.is_empty() => Err(PipelineError::Hung {
                stages: hung,
                grace_ms: grace.as_millis() as u64,
            }),
            None => Ok(()),
        };
        (report, result)
    }
}
