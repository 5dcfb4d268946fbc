//! Pipeline edges over zenoh: a sending stage publishes each item of a local edge on a key
//! expression, a receiving source turns the key's messages back into items, both counting what
//! the network lost, reordered or delivered late (see [`crate::wire`] for the messages).
//!
//! The sender never waits: publications use zenoh's `CongestionControl::Drop`, so a slow or absent
//! receiver costs messages (counted as `unheard` when nobody is subscribed), never a blocked
//! capture. The receiver's zenoh callback reads and files each message and queues it by the edge's
//! overload policy; the receiving stage's thread hands the items on.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

use crate::capture::AudioBlock;
use crate::config::{EdgeConfig, ZenohConfig};
use crate::error::{PipelineError, StageError};
use crate::event::{unix_now, Detection};
use crate::kws::KwsHit;
use crate::metrics::StageMetrics;
use crate::stage::{bounded_edge, EdgeRx, EdgeTx, Flow, Outbox, Source, Stage, StageContext};
use crate::wire::{
    decode_audio_block, encode_audio_block, instant_to_unix, new_stream_id, Arrival, SeqTracker,
    WireError, WireEvent, WireHeader, AUDIO_MESSAGE_MAX,
};

/// A zenoh session shared by the network stages of one process.
pub type NetSession = zenoh::Session;

/// Opens this process's zenoh session from `[zenoh]`.
pub fn open_session(cfg: &ZenohConfig) -> Result<NetSession, PipelineError> {
    let setup = |what: &str, e: zenoh::Error| PipelineError::Network {
        what: format!("config {what}"),
        source: Arc::from(e),
    };
    let mut z = zenoh::Config::default();
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    z.insert_json5("mode", &format!("{:?}", cfg.mode))
        .map_err(|e| setup("mode", e))?;
    if !cfg.listen.is_empty() {
        z.insert_json5("listen/endpoints", &json(&cfg.listen))
            .map_err(|e| setup("listen endpoints", e))?;
    }
    if !cfg.connect.is_empty() {
        z.insert_json5("connect/endpoints", &json(&cfg.connect))
            .map_err(|e| setup("connect endpoints", e))?;
    }
    z.insert_json5(
        "scouting/multicast/enabled",
        if cfg.multicast_scouting {
            "true"
        } else {
            "false"
        },
    )
    .map_err(|e| setup("scouting", e))?;
    zenoh::open(z).wait().map_err(|e| PipelineError::Network {
        what: format!(
            "cannot open the session (mode {}, listen {:?}, connect {:?})",
            cfg.mode, cfg.listen, cfg.connect
        ),
        source: Arc::from(e),
    })
}

/// Closes a session, waiting at most `limit` (a peer that is gone must not hold up an exit).
pub fn close_session(session: NetSession, limit: Duration) {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let _ = std::thread::Builder::new()
        .name("zenoh-close".into())
        .spawn(move || {
            let _ = session.close().wait();
            let _ = tx.send(());
        });
    let _ = rx.recv_timeout(limit);
}

/// Turns items into messages.
pub trait Encode: Send + 'static {
    /// The edge's item.
    type Item: Send + 'static;
    /// When the audio behind `item` was captured, Unix seconds.
    fn captured_at(&self, item: &Self::Item) -> f64;
    /// Writes the message for `item` into `out`.
    fn encode(&mut self, header: &WireHeader, item: &Self::Item, out: &mut Vec<u8>);
}

/// Turns messages back into items.
pub trait Decode: Send + 'static {
    /// The edge's item.
    type Item: Send + 'static;
    /// Whether a message older than one already received is dropped (audio: stale context)
    /// or delivered (events).
    const DROP_REORDERED: bool;
    /// Reads one message.
    fn decode(&self, bytes: &[u8]) -> Result<(WireHeader, Self::Item), WireError>;
}

/// Audio blocks as binary messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct AudioCodec;

impl Encode for AudioCodec {
    type Item = AudioBlock;
    fn captured_at(&self, block: &AudioBlock) -> f64 {
        instant_to_unix(block.captured_at)
    }
    fn encode(&mut self, header: &WireHeader, block: &AudioBlock, out: &mut Vec<u8>) {
        encode_audio_block(header, block, out);
    }
}

impl Decode for AudioCodec {
    type Item = AudioBlock;
    const DROP_REORDERED: bool = true;
    fn decode(&self, bytes: &[u8]) -> Result<(WireHeader, AudioBlock), WireError> {
        decode_audio_block(bytes)
    }
}

/// Keyword hits of one model, sent as named JSON events ([`WireEvent`]).
#[derive(Clone, Debug)]
pub struct EventEncoder {
    /// The model's name.
    pub model: String,
    /// Its labels.
    pub labels: Vec<String>,
}

impl Encode for EventEncoder {
    type Item = KwsHit;
    fn captured_at(&self, hit: &KwsHit) -> f64 {
        hit.decided_at - hit.latency_ms / 1e3
    }
    fn encode(&mut self, header: &WireHeader, hit: &KwsHit, out: &mut Vec<u8>) {
        let ev = WireEvent::new(
            header.stream,
            header.seq,
            &self.model,
            &hit.to_detection(&self.labels),
        );
        out.clear();
        out.extend_from_slice(ev.to_json().as_bytes());
    }
}

/// Named JSON events back into detections.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventDecoder;

impl Decode for EventDecoder {
    type Item = Detection;
    const DROP_REORDERED: bool = false;
    fn decode(&self, bytes: &[u8]) -> Result<(WireHeader, Detection), WireError> {
        let ev = WireEvent::from_json(bytes)?;
        Ok((ev.header(), ev.detection))
    }
}

/// The sending end of a zenoh edge: a sink stage that publishes every item it gets.
pub struct PublishStage<E: Encode> {
    session: NetSession,
    key: String,
    encoder: E,
    stream: u64,
    seq: u64,
    buf: Vec<u8>,
    publisher: Option<Publisher<'static>>,
    metrics: Option<Arc<StageMetrics>>,
}

impl<E: Encode> PublishStage<E> {
    /// Publishes on `key` through `session`.
    pub fn new(session: NetSession, key: &str, encoder: E) -> Self {
        PublishStage {
            session,
            key: key.to_string(),
            encoder,
            stream: new_stream_id(),
            seq: 0,
            buf: Vec::with_capacity(AUDIO_MESSAGE_MAX),
            publisher: None,
            metrics: None,
        }
    }
}

impl<E: Encode> Stage for PublishStage<E> {
    type In = E::Item;
    type Out = ();

    fn start(&mut self, ctx: &StageContext) -> Result<(), StageError> {
        ctx.metrics.net.enabled.store(true, Ordering::Relaxed);
        self.metrics = Some(ctx.metrics.clone());
        let p = self
            .session
            .declare_publisher(self.key.clone())
            .congestion_control(CongestionControl::Drop)
            .express(true)
            .wait()
            .map_err(|e| StageError::new(format!("zenoh publisher on {:?}: {e}", self.key)))?;
        self.publisher = Some(p);
        Ok(())
    }

    fn process(&mut self, item: E::Item, _out: &mut Outbox<()>) -> Result<(), StageError> {
        let Some(p) = &self.publisher else {
            return Err(StageError::new("publisher used before start"));
        };
        let header = WireHeader {
            stream: self.stream,
            seq: self.seq,
            captured_at: self.encoder.captured_at(&item),
        };
        self.seq += 1;
        self.encoder.encode(&header, &item, &mut self.buf);
        let heard = p.matching_status().wait().map_or(true, |m| m.matching());
        if !heard {
            if let Some(m) = &self.metrics {
                m.net.unheard.fetch_add(1, Ordering::Relaxed);
            }
        }
        p.put(self.buf.as_slice())
            .wait()
            .map_err(|e| StageError::new(format!("zenoh put on {:?}: {e}", self.key)))
    }

    fn stop(&mut self) -> Result<(), StageError> {
        if let Some(p) = self.publisher.take() {
            let _ = p.undeclare().wait();
        }
        Ok(())
    }
}

/// How often the receiving stage checks for a stop while no message comes.
const POLL: Duration = Duration::from_millis(20);

/// The receiving end of a zenoh edge: a source whose items are the messages on a key.
///
/// zenoh's callback reads each message, files its sequence number (gaps, reorderings, late
/// arrivals, sender restarts: counted as lost on the network) and queues the item by the edge's
/// policy (what overflows is counted as the edge's drops); the stage's thread hands them on.
pub struct SubscribeSource<D: Decode + Sync> {
    session: NetSession,
    key: String,
    decoder: Arc<D>,
    late_s: f64,
    /// Moves into zenoh's callback at start.
    queue_tx: Option<EdgeTx<D::Item>>,
    queue_rx: EdgeRx<D::Item>,
    subscriber: Option<Subscriber<()>>,
    pending: Option<D::Item>,
}

impl<D: Decode + Sync> SubscribeSource<D> {
    /// Receives the edge `edge_name` (its key, capacity, policy and late limit from `cfg`).
    pub fn new(
        session: NetSession,
        edge_name: &str,
        cfg: &EdgeConfig,
        decoder: D,
    ) -> Result<Self, PipelineError> {
        let key = cfg.zenoh_key.clone().ok_or_else(|| PipelineError::Wiring {
            edge: edge_name.into(),
            reason: "has no zenoh_key to subscribe to".into(),
        })?;
        let (queue_tx, queue_rx) = bounded_edge(edge_name, cfg);
        Ok(SubscribeSource {
            session,
            key,
            decoder: Arc::new(decoder),
            late_s: cfg.late_ms / 1e3,
            queue_tx: Some(queue_tx),
            queue_rx,
            subscriber: None,
            pending: None,
        })
    }
}

/// Reads, files and queues one message (zenoh's callback).
struct Receive<D: Decode> {
    decoder: Arc<D>,
    tracker: Mutex<SeqTracker>,
    late_s: f64,
    /// The queue to the stage's thread, with the edge's overload policy.
    tx: EdgeTx<D::Item>,
    stage: Arc<StageMetrics>,
}

impl<D: Decode + Sync> Receive<D> {
    fn message(&self, bytes: &[u8]) {
        let net = &self.stage.net;
        let (header, item) = match self.decoder.decode(bytes) {
            Ok(x) => x,
            Err(_) => {
                net.bad.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let age = unix_now() - header.captured_at;
        let arrival = {
            let Ok(mut t) = self.tracker.lock() else {
                return;
            };
            let a = t.observe(&header, age, self.late_s);
            net.missing.store(t.missing, Ordering::Relaxed);
            net.reordered.store(t.reordered, Ordering::Relaxed);
            net.late.store(t.late, Ordering::Relaxed);
            net.restarts.store(t.restarts, Ordering::Relaxed);
            a
        };
        if arrival == Arrival::Reordered && D::DROP_REORDERED {
            return;
        }
        self.tx.offer(item);
    }
}

impl<D: Decode + Sync> Source for SubscribeSource<D> {
    type Out = D::Item;

    fn start(&mut self, ctx: &StageContext) -> Result<(), StageError> {
        ctx.metrics.net.enabled.store(true, Ordering::Relaxed);
        if let Ok(mut i) = ctx.metrics.input.lock() {
            *i = Some(self.queue_rx.metrics().clone());
        }
        let tx = self
            .queue_tx
            .take()
            .ok_or_else(|| StageError::new("subscriber started twice"))?;
        let receive = Receive {
            decoder: self.decoder.clone(),
            tracker: Mutex::new(SeqTracker::default()),
            late_s: self.late_s,
            tx,
            stage: ctx.metrics.clone(),
        };
        let s = self
            .session
            .declare_subscriber(self.key.clone())
            .callback(move |sample| receive.message(&sample.payload().to_bytes()))
            .wait()
            .map_err(|e| StageError::new(format!("zenoh subscriber on {:?}: {e}", self.key)))?;
        self.subscriber = Some(s);
        Ok(())
    }

    fn poll(&mut self, out: &mut Outbox<D::Item>) -> Result<Flow, StageError> {
        // An item that arrived while waiting is handed on by the next call, so the stage's
        // latency is the time to hand on an item, not the time spent waiting for one.
        if let Some(item) = self.pending.take().or_else(|| self.queue_rx.try_recv()) {
            out.send(item)?;
            return Ok(Flow::Continue);
        }
        match self.queue_rx.recv_timeout(POLL) {
            Ok(item) => {
                self.pending = Some(item);
                Ok(Flow::Continue)
            }
            Err(RecvTimeoutError::Timeout) => Ok(Flow::Continue),
            Err(RecvTimeoutError::Disconnected) => Ok(Flow::Finished),
        }
    }

    fn stop(&mut self) -> Result<(), StageError> {
        if let Some(s) = self.subscriber.take() {
            let _ = s.undeclare().wait();
        }
        Ok(())
    }
}
