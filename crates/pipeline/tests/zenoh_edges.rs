//! The listen graph with edges over zenoh (TCP on loopback), in one test process: the same events
//! as the local graph; split into two "processes" (two sessions) by config alone; the receiver's
//! count of gaps, reorderings, late and unreadable messages and sender restarts; a sender with
//! nobody listening that never blocks; a slow receiver whose overflow is dropped and counted.
#![cfg(feature = "zenoh")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sepstream_pipeline::wire::{new_stream_id, WireEvent};
use sepstream_pipeline::{
    start_actuation, start_listen, AudioInput, Detection, KwsModel, Listener, PipelineConfig,
    PipelineReport, SimulatedInput,
};
use sepstream_testkit::free_port;
use sepstream_testkit::repo_root;
use zenoh::Wait;

/// A key prefix no other test (or test run) shares.
fn unique(name: &str) -> String {
    format!(
        "sepstream-test/{}/{name}/{:x}",
        std::process::id(),
        new_stream_id()
    )
}

fn config(text: &str) -> PipelineConfig {
    let shipped = sepstream_pipeline::config::SHIPPED_PIPELINE_TOML;
    // The shipped settings, with the test's edges and sections replacing the shipped ones.
    let mut cfg = PipelineConfig::from_toml_str(shipped, "shipped").unwrap();
    let extra = PipelineConfig::from_toml_str(text, "test").unwrap();
    for (k, v) in extra.edges {
        cfg.edges.insert(k, v);
    }
    cfg.process = extra.process;
    cfg.zenoh = extra.zenoh;
    cfg
}

/// Capture alone, listening on `port`; and inference + actuation, connecting to it, with an
/// audio queue of `rest_capacity` blocks. One audio key for both.
fn split_configs(port: u16, rest_capacity: usize) -> (PipelineConfig, PipelineConfig) {
    let key = unique("audio");
    let capture = config(&format!(
        "[process]\nstages = [\"capture\"]\n\
         [zenoh]\nlisten = [\"tcp/127.0.0.1:{port}\"]\nmulticast_scouting = false\n\
         [edges.audio]\ncapacity = 50\npolicy = \"drop_oldest\"\nzenoh_key = \"{key}\"\n"
    ));
    let rest = config(&format!(
        "[process]\nstages = [\"inference\", \"actuation\"]\n\
         [zenoh]\nconnect = [\"tcp/127.0.0.1:{port}\"]\nmulticast_scouting = false\n\
         [edges.audio]\ncapacity = {rest_capacity}\npolicy = \"drop_oldest\"\nzenoh_key = \"{key}\"\n"
    ));
    (capture, rest)
}

fn sample_input() -> SimulatedInput {
    let (samples, rate) =
        sepstream_audio::read_audio(&repo_root().join("assets/sample_keywords.wav")).unwrap();
    SimulatedInput::from_samples(samples, rate, 0.3, 1.0)
}

type Heard = Arc<Mutex<Vec<Detection>>>;

fn collector() -> (
    Heard,
    impl FnMut(&Detection) -> Result<(), sepstream_pipeline::StageError> + Send + 'static,
) {
    let heard: Heard = Arc::default();
    let h = heard.clone();
    (heard, move |d: &Detection| {
        h.lock().unwrap().push(d.clone());
        Ok(())
    })
}

/// Waits until `cond` holds on the listener's counters (or `limit` passes).
fn wait_until(l: &Listener, limit: Duration, cond: impl Fn(&PipelineReport) -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond(&l.running.snapshot()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn stopped_in_time(l: Listener) -> PipelineReport {
    let t0 = Instant::now();
    let (report, result) = l.shutdown(Duration::from_secs(1));
    result.unwrap();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    report
}

fn words(d: &[Detection]) -> Vec<(String, i64, i64)> {
    // keyword and times to the millisecond: equal audio gives equal decisions
    d.iter()
        .map(|d| {
            (
                d.keyword.clone(),
                (d.start * 1e3).round() as i64,
                (d.end * 1e3).round() as i64,
            )
        })
        .collect()
}

fn unheard(r: &PipelineReport) -> u64 {
    r.stage("audio.pub")
        .and_then(|s| s.net)
        .map_or(0, |n| n.unheard)
}

/// Runs the sample through `cfg` until capture has ended and every block is through.
fn run_sample(cfg: PipelineConfig) -> (Vec<Detection>, PipelineReport) {
    let model = KwsModel::bundled_default().unwrap();
    let (heard, act) = collector();
    let mut l = start_listen(model, AudioInput::Simulated(sample_input()), cfg, act).unwrap();
    // the simulated microphone ends by itself; with zenoh edges the downstream stages go on
    // listening, so wait until capture has stopped producing and inference has caught up
    let t0 = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    while t0.elapsed() < Duration::from_secs(60) {
        if l.running.wait_for(Duration::from_millis(50)) {
            break;
        }
        let r = l.running.snapshot();
        let cap = r.stage("capture").map_or(0, |s| s.items_out);
        let inf = r.stage("inference").map_or(0, |s| s.items_in);
        if cap != last.0 {
            last = (cap, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) && inf + unheard(&r) == cap {
            break; // nothing new for half a second and every block handled
        }
    }
    let report = stopped_in_time(l);
    let got = heard.lock().unwrap().clone();
    (got, report)
}

#[test]
fn zenoh_edges_in_one_process_give_the_events_of_local_edges() {
    let (local, _) = run_sample(config(""));
    assert_eq!(
        local.iter().map(|d| d.keyword.as_str()).collect::<Vec<_>>(),
        ["yes", "stop", "left", "go"],
        "the bundled model on the sample"
    );
    let port = free_port();
    let (a, e) = (unique("audio"), unique("events"));
    let cfg = config(&format!(
        "[zenoh]\nlisten = [\"tcp/127.0.0.1:{port}\"]\nmulticast_scouting = false\n\
         [edges.audio]\ncapacity = 50\npolicy = \"drop_oldest\"\nzenoh_key = \"{a}\"\n\
         [edges.events]\ncapacity = 64\npolicy = \"drop_newest\"\nzenoh_key = \"{e}\"\n"
    ));
    let (remote, report) = run_sample(cfg);
    eprintln!("{report}");
    eprintln!("local {:?}\nzenoh {:?}", words(&local), words(&remote));
    // a block sent before the in-process receiver had subscribed is counted unheard (at most the
    // first few, in the lead-in silence); all the rest must give the same decisions
    let unheard = report.stage("audio.pub").unwrap().net.unwrap().unheard;
    assert!(unheard <= 5, "{unheard} blocks unheard");
    if unheard == 0 {
        assert_eq!(
            words(&remote),
            words(&local),
            "zenoh edges changed the events"
        );
    } else {
        let kw = |d: &[Detection]| d.iter().map(|d| d.keyword.clone()).collect::<Vec<_>>();
        assert_eq!(kw(&remote), kw(&local), "zenoh edges changed the events");
        for (r, l) in remote.iter().zip(&local) {
            assert!((r.end - l.end).abs() < 0.05, "{r:?} vs {l:?}");
        }
    }
    let (cap, publ, sub) = (
        report.stage("capture").unwrap(),
        report.stage("audio.pub").unwrap(),
        report.stage("audio.sub").unwrap(),
    );
    assert_eq!(
        publ.items_in, cap.items_out,
        "every block reached the sender"
    );
    assert_eq!(
        sub.items_in,
        publ.items_in - unheard,
        "every block sent to the receiver arrived"
    );
    let net = sub.net.unwrap();
    assert_eq!(
        (net.missing, net.reordered, net.bad, net.restarts),
        (0, 0, 0, 0)
    );
    let ev = report.stage("events.sub").unwrap();
    assert_eq!(ev.items_in as usize, remote.len());
}

#[test]
fn the_graph_splits_across_two_sessions_by_config_alone() {
    let (capture_cfg, rest_cfg) = split_configs(free_port(), 50);
    let model = KwsModel::bundled_default().unwrap();
    let (_, no_act) = collector();
    let capture = start_listen(
        model.clone(),
        AudioInput::Simulated(sample_input()),
        capture_cfg,
        no_act,
    )
    .unwrap();
    assert_eq!(capture.stages, ["capture", "audio.pub"]);
    let (heard, act) = collector();
    // the receiving side joins a running sender (during the lead-in silence)
    let rest = start_listen(
        model,
        AudioInput::Simulated(SimulatedInput::silence(16_000)),
        rest_cfg,
        act,
    )
    .unwrap();
    assert_eq!(rest.stages, ["audio.sub", "inference", "actuation"]);
    // the sender's side ends when the simulated microphone does
    let mut capture = capture;
    assert!(capture.running.wait_for(Duration::from_secs(60)));
    let sent = stopped_in_time(capture);
    let publ = sent.stage("audio.pub").unwrap();
    let expect = publ.items_in - publ.net.unwrap().unheard;
    let delivered = wait_until(&rest, Duration::from_secs(5), |r| {
        r.stage("inference").is_some_and(|s| s.items_in == expect)
    });
    std::thread::sleep(Duration::from_millis(300));
    let got = stopped_in_time(rest);
    eprintln!("{sent}{got}");
    assert!(delivered, "not every block sent to a receiver arrived");
    assert!(expect > 900, "the receiver joined late: {expect} blocks");
    let net = got.stage("audio.sub").unwrap().net.unwrap();
    assert_eq!((net.missing, net.bad), (0, 0));
    let heard = heard.lock().unwrap();
    assert_eq!(
        heard.iter().map(|d| d.keyword.as_str()).collect::<Vec<_>>(),
        ["yes", "stop", "left", "go"]
    );
}

#[test]
fn the_receiver_counts_gaps_reorderings_late_unreadable_and_restarts() {
    let port = free_port();
    let key = unique("events");
    let cfg = config(&format!(
        "[zenoh]\nlisten = [\"tcp/127.0.0.1:{port}\"]\nmulticast_scouting = false\n\
         [edges.events]\ncapacity = 64\npolicy = \"drop_newest\"\nzenoh_key = \"{key}\"\nlate_ms = 500.0\n"
    ));
    let (heard, act) = collector();
    let l = start_actuation(cfg, act).unwrap();
    assert_eq!(l.stages, ["events.sub", "actuation"]);
    // a hand-made sender in its own session
    let mut z = zenoh::Config::default();
    z.insert_json5("connect/endpoints", &format!("[\"tcp/127.0.0.1:{port}\"]"))
        .unwrap();
    z.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    let session = zenoh::open(z).wait().unwrap();
    let publisher = session.declare_publisher(key.clone()).wait().unwrap();
    let t0 = Instant::now();
    while !publisher.matching_status().wait().unwrap().matching() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no subscriber matched"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = sepstream_pipeline::event::unix_now();
    let event = |stream: u64, seq: u64, captured_ago: f64| {
        let d = Detection {
            keyword: format!("w{seq}"),
            label: 0,
            start: 0.0,
            end: 1.0,
            score: 0.9,
            decided_at: now,
            latency_ms: captured_ago * 1e3,
        };
        WireEvent::new(stream, seq, "test", &d).to_json()
    };
    for (stream, seq, ago) in [
        (1, 0, 0.0),
        (1, 1, 0.0),
        (1, 3, 0.0),
        (1, 2, 0.0),
        (1, 4, 2.0),
    ] {
        publisher.put(event(stream, seq, ago)).wait().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    publisher.put("not json").wait().unwrap();
    publisher.put(event(2, 0, 0.0)).wait().unwrap();
    assert!(
        wait_until(&l, Duration::from_secs(5), |r| r
            .stage("actuation")
            .is_some_and(|s| s.items_in == 6)),
        "{}",
        l.running.snapshot()
    );
    let report = stopped_in_time(l);
    let net = report.stage("events.sub").unwrap().net.unwrap();
    eprintln!("{report}");
    assert_eq!(
        (net.missing, net.reordered, net.late, net.bad, net.restarts),
        (1, 1, 1, 1, 1)
    );
    // events are delivered even out of order
    let order: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.keyword.clone())
        .collect();
    assert_eq!(order, ["w0", "w1", "w3", "w2", "w4", "w0"]);
    drop(publisher);
    let _ = session.close().wait();
}

#[test]
fn a_sender_nobody_hears_never_blocks_and_counts_what_it_lost() {
    let port = free_port();
    let key = unique("audio");
    let cfg = config(&format!(
        "[process]\nstages = [\"capture\"]\n\
         [zenoh]\nlisten = [\"tcp/127.0.0.1:{port}\"]\nmulticast_scouting = false\n\
         [edges.audio]\ncapacity = 50\npolicy = \"drop_oldest\"\nzenoh_key = \"{key}\"\n"
    ));
    let (_, act) = collector();
    let l = start_listen(
        KwsModel::bundled_default().unwrap(),
        AudioInput::Simulated(SimulatedInput::silence(16_000)),
        cfg,
        act,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let report = stopped_in_time(l);
    eprintln!("{report}");
    let (cap, publ) = (
        report.stage("capture").unwrap(),
        report.stage("audio.pub").unwrap(),
    );
    assert!(cap.items_out >= 50, "capture ran: {cap}");
    assert_eq!(publ.drops, 0, "the sender kept up");
    let unheard = publ.net.unwrap().unheard;
    assert_eq!(unheard, publ.items_in, "every block went unheard");
}

#[test]
fn a_slow_receiver_drops_by_policy_and_counts_it_while_the_sender_goes_on() {
    let (capture_cfg, rest_cfg) = split_configs(free_port(), 4);
    let model = KwsModel::bundled_default().unwrap();
    let (_, act) = collector();
    let rest = start_listen(
        model.clone(),
        AudioInput::Simulated(SimulatedInput::silence(16_000)),
        rest_cfg,
        act,
    )
    .unwrap();
    // inference takes 40 ms per 10 ms block: a quarter of the audio can be handled
    rest.running
        .hooks("inference")
        .unwrap()
        .delay_us
        .store(40_000, std::sync::atomic::Ordering::Relaxed);
    let (_, no_act) = collector();
    let capture = start_listen(
        model,
        AudioInput::Simulated(SimulatedInput::silence(16_000)),
        capture_cfg,
        no_act,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let sent = stopped_in_time(capture);
    std::thread::sleep(Duration::from_millis(300));
    let got = stopped_in_time(rest);
    eprintln!("{sent}{got}");
    let publ = sent.stage("audio.pub").unwrap();
    assert!(publ.items_in >= 150, "the sender went on at full rate");
    let sub = got.stage("audio.sub").unwrap();
    let inf = got.stage("inference").unwrap();
    assert!(
        sub.drops + inf.drops > 0,
        "nothing was dropped at a quarter of the needed speed"
    );
    // every block is accounted for: unheard by the sender, lost on the network, dropped by a
    // queue's policy or handled (up to a queue's capacity still queued at the stop). The receiver
    // joins mid-stream, and zenoh's matching status can tell the sender of the join a message or
    // two before or after the route is there: up to JOIN blocks either way at that moment.
    const JOIN: u64 = 3;
    let net = sub.net.unwrap();
    let received = publ.items_in - publ.net.unwrap().unheard - net.missing;
    let handed_on = sub.items_in;
    assert!(
        handed_on + sub.drops <= received + JOIN && received <= handed_on + sub.drops + 4 + JOIN,
        "received {received}: handed on {handed_on}, dropped {}",
        sub.drops
    );
    assert!(
        inf.items_in + inf.drops <= handed_on && handed_on <= inf.items_in + inf.drops + 4,
        "handed on {handed_on}: handled {}, dropped {}",
        inf.items_in,
        inf.drops
    );
}
