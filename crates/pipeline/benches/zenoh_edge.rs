//! What a zenoh edge adds: audio blocks (10 ms at 16 kHz) from a source stage through the
//! sending stage, zenoh TCP on loopback between two sessions, and the receiving stage to a sink,
//! timed from the block's capture stamp to the sink; beside the same blocks over a local
//! crossbeam edge. Then the throughput of blocks sent as fast as the source can make them.
//!
//!   cargo bench -p sepstream-pipeline --features zenoh --bench zenoh_edge [-- SECONDS]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sepstream_pipeline::capture::BLOCK_MAX;
use sepstream_pipeline::remote::{open_session, AudioCodec, PublishStage, SubscribeSource};
use sepstream_pipeline::{
    AudioBlock, Flow, Outbox, Pipeline, PipelineConfig, PipelineReport, Source, Stage, ZenohConfig,
};

/// Blocks of a sine, stamped when made; every `period` (zero: as fast as it can) until `n`.
struct Blocks {
    n: u64,
    made: u64,
    period: Duration,
    next: Instant,
}

impl Source for Blocks {
    type Out = AudioBlock;
    fn poll(
        &mut self,
        out: &mut Outbox<AudioBlock>,
    ) -> Result<Flow, sepstream_pipeline::StageError> {
        if self.made >= self.n {
            return Ok(Flow::Finished);
        }
        if !self.period.is_zero() {
            let now = Instant::now();
            if now < self.next {
                std::thread::sleep((self.next - now).min(Duration::from_millis(5)));
                return Ok(Flow::Continue);
            }
            self.next += self.period;
        }
        let mut b = AudioBlock {
            data: [0.0; BLOCK_MAX],
            len: 160,
            start_sample: self.made * 160,
            rate: 16_000,
            captured_at: Instant::now(),
        };
        for (i, x) in b.data[..160].iter_mut().enumerate() {
            *x = (i as f32 * 0.05).sin() * 0.1;
        }
        self.made += 1;
        out.send(b)?;
        Ok(Flow::Continue)
    }
}

/// Records each block's age (capture stamp to now) in ns.
struct Ages(Arc<Mutex<Histogram<u64>>>);

impl Stage for Ages {
    type In = AudioBlock;
    type Out = ();
    fn process(
        &mut self,
        b: AudioBlock,
        _: &mut Outbox<()>,
    ) -> Result<(), sepstream_pipeline::StageError> {
        let ns = b.captured_at.elapsed().as_nanos() as u64;
        if let Ok(mut h) = self.0.lock() {
            h.saturating_record(ns.max(1));
        }
        Ok(())
    }
}

fn histogram() -> Arc<Mutex<Histogram<u64>>> {
    Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
    ))
}

fn config(key: Option<&str>, capacity: usize) -> PipelineConfig {
    let mut c = PipelineConfig::default();
    let mut e = c.edge("audio");
    e.capacity = capacity;
    e.zenoh_key = key.map(String::from);
    c.edges.insert("audio".into(), e);
    c
}

fn line(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<28} n {:>6}  p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us  max {:>8.1} us",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
}

fn local(n: u64, period: Duration) -> Histogram<u64> {
    let h = histogram();
    let mut p = Pipeline::new(config(None, 50));
    let (tx, rx) = p.edge::<AudioBlock>("audio");
    p.add_source(
        "source",
        Blocks {
            n,
            made: 0,
            period,
            next: Instant::now(),
        },
        tx,
    )
    .unwrap();
    p.add_stage("sink", Ages(h.clone()), rx, None).unwrap();
    let mut r = p.start().unwrap();
    r.wait_for(Duration::from_secs(3600));
    let _ = r.shutdown(Duration::from_secs(1));
    let out = h.lock().unwrap().clone();
    out
}

/// Sender and receiver pipelines on two sessions joined over TCP on loopback.
fn over_zenoh(
    n: u64,
    period: Duration,
    capacity: usize,
) -> (Histogram<u64>, PipelineReport, PipelineReport, f64) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = format!("sepstream-bench/{}/audio", std::process::id());
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let send_session = open_session(&ZenohConfig {
        listen: vec![endpoint.clone()],
        multicast_scouting: false,
        ..ZenohConfig::default()
    })
    .unwrap();
    let recv_session = open_session(&ZenohConfig {
        connect: vec![endpoint],
        multicast_scouting: false,
        ..ZenohConfig::default()
    })
    .unwrap();
    let h = histogram();
    let rcfg = config(Some(&key), capacity);
    let mut rp = Pipeline::new(rcfg.clone());
    let (stx, srx) = rp.edge::<AudioBlock>("audio");
    let sub = SubscribeSource::new(
        recv_session.clone(),
        "audio",
        &rcfg.edge("audio"),
        AudioCodec,
    )
    .unwrap();
    rp.add_source("audio.sub", sub, stx).unwrap();
    rp.add_stage("sink", Ages(h.clone()), srx, None).unwrap();
    let receiver = rp.start().unwrap();
    // wait for the peers to find each other
    std::thread::sleep(Duration::from_millis(1500));
    let mut sp = Pipeline::new(config(Some(&key), capacity));
    let (tx, rx) = sp.edge::<AudioBlock>("audio");
    sp.add_source(
        "source",
        Blocks {
            n,
            made: 0,
            period,
            next: Instant::now(),
        },
        tx,
    )
    .unwrap();
    sp.add_stage(
        "audio.pub",
        PublishStage::new(send_session.clone(), &key, AudioCodec),
        rx,
        None,
    )
    .unwrap();
    let t0 = Instant::now();
    let mut sender = sp.start().unwrap();
    sender.wait_for(Duration::from_secs(3600));
    let secs = t0.elapsed().as_secs_f64();
    let (sent, _) = sender.shutdown(Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(500));
    let (got, _) = receiver.shutdown(Duration::from_secs(1));
    let out = h.lock().unwrap().clone();
    (out, sent, got, secs)
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20.0);
    let n = (seconds * 100.0) as u64;
    println!("audio blocks of 10 ms (160 samples, 680-byte messages), {n} at 100 per second:");
    let l = local(n, Duration::from_millis(10));
    line("local crossbeam edge", &l);
    let (z, sent, got, _) = over_zenoh(n, Duration::from_millis(10), 50);
    line("zenoh edge, TCP loopback", &z);
    let net = got.stage("audio.sub").and_then(|s| s.net).unwrap();
    println!(
        "  sent {}, received {}, unheard {}, missing {}, late {}",
        sent.stage("audio.pub").unwrap().items_in,
        got.stage("audio.sub").unwrap().items_in,
        sent.stage("audio.pub").unwrap().net.unwrap().unheard,
        net.missing,
        net.late
    );
    println!(
        "  added by the zenoh edge: p50 {:.1} us, p99 {:.1} us",
        (z.value_at_quantile(0.5) as f64 - l.value_at_quantile(0.5) as f64) / 1e3,
        (z.value_at_quantile(0.99) as f64 - l.value_at_quantile(0.99) as f64) / 1e3
    );
    println!("throughput: blocks at a fixed rate for 2 s each (receiver queue 1024):");
    for rate in [1_000u64, 10_000, 30_000, 100_000] {
        let n = rate * 2;
        let (_, sent, got, secs) = over_zenoh(n, Duration::from_nanos(1_000_000_000 / rate), 1024);
        let publ = sent.stage("audio.pub").unwrap();
        let sub = got.stage("audio.sub").unwrap();
        let net = sub.net.unwrap();
        let dropped_before_send = n - publ.items_in;
        println!(
            "  {rate:>6}/s ({:>4}x real time): made {n} in {secs:.2} s, sent {}, received {} ({:.1}%), lost on the wire {}, dropped by the sender's queue {}, by the receiver's {}",
            rate / 100,
            publ.items_in,
            sub.items_in,
            100.0 * sub.items_in as f64 / n as f64,
            net.missing,
            dropped_before_send,
            sub.drops
        );
    }
}
