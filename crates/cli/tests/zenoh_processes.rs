//! The listen graph split across processes over zenoh on loopback, with the shipped
//! configs/zenoh_*.toml (on free ports): a real keyword clip played through the virtual microphone
//! becomes an event in the third process with every message counted; the inference process
//! killed and started again while capture goes on; a robot subscribing after the events began.
//! Every process stops on SIGINT in under a second.
#![cfg(feature = "zenoh")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{live_audio_ready, pick_clip, repo_root, stat, stderr_lines};
use sepstream_testkit::free_port;
/// The shipped three-process configs on fresh ports and keys, written to `dir`.
struct Configs {
    capture: PathBuf,
    inference: PathBuf,
    actuation: PathBuf,
}

fn configs(dir: &Path) -> Configs {
    let (p_cap, p_act) = (free_port(), free_port());
    let tag = format!("{}-{}", std::process::id(), p_cap);
    let write = |name: &str| {
        let text = std::fs::read_to_string(repo_root().join(format!("configs/zenoh_{name}.toml")))
            .unwrap()
            .replace("127.0.0.1:7447", &format!("127.0.0.1:{p_cap}"))
            .replace("127.0.0.1:7449", &format!("127.0.0.1:{p_act}"))
            .replace("\"sepstream/", &format!("\"sepstream-test/{tag}/"));
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    };
    Configs {
        capture: write("capture"),
        inference: write("inference"),
        actuation: write("actuation"),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepstream-zenoh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Proc {
    name: &'static str,
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    err_seen: Vec<String>,
}

fn spawn(name: &'static str, args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = stderr_lines(&mut child);
    let (tx, out) = mpsc::channel();
    let so = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(so).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Proc {
        name,
        child,
        out,
        err,
        err_seen: Vec::new(),
    }
}

impl Proc {
    /// Waits for a stderr line containing `what`.
    fn wait_err(&mut self, what: &str, limit: Duration) {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Ok(l) = self.err.recv_timeout(Duration::from_millis(50)) {
                let hit = l.contains(what);
                self.err_seen.push(l);
                if hit {
                    return;
                }
            }
        }
        let _ = self.child.kill();
        panic!(
            "{}: no {what:?} within {limit:?}: {:#?}",
            self.name, self.err_seen
        );
    }

    /// Waits for a stdout line for which `pick` gives a value.
    fn wait_out<T>(&mut self, limit: Duration, pick: impl Fn(&str) -> Option<T>) -> Option<T> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Ok(l) = self.out.recv_timeout(Duration::from_millis(50)) {
                if let Some(v) = pick(&l) {
                    return Some(v);
                }
            }
        }
        None
    }

    /// SIGINT, then the exit (which must come within a second) and the rest of stderr.
    fn interrupt(mut self) -> (Duration, String) {
        let t0 = Instant::now();
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                panic!("{} did not exit 5 s after SIGINT", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = t0.elapsed();
        let mut err = self.err_seen.join("\n");
        while let Ok(l) = self.err.recv_timeout(Duration::from_millis(200)) {
            err.push('\n');
            err.push_str(&l);
        }
        assert!(
            status.success(),
            "{} exited with {status:?}:\n{err}",
            self.name
        );
        assert!(
            took < Duration::from_secs(1),
            "{} took {took:?} to exit after SIGINT:\n{err}",
            self.name
        );
        (took, err)
    }
}

fn keyword_of(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["keyword"].as_str().map(String::from)
}

#[test]
fn a_keyword_played_into_the_microphone_becomes_an_event_two_processes_away_or_skip_without_live_audio(
) {
    let Some((model, model_path)) = live_audio_ready() else {
        return;
    };
    let (keyword, clip, _) = pick_clip(&model, &["yes", "no", "stop", "go"])
        .expect("the model detects none of the first 30 clips of yes/no/stop/go offline");
    let dir = tempdir("three");
    let c = configs(&dir);
    let m = model_path.to_str().unwrap();
    let mut act = spawn(
        "actuation",
        &[
            "listen",
            "--config",
            c.actuation.to_str().unwrap(),
            "--json",
            "--stats",
        ],
    );
    act.wait_err("receiving events", Duration::from_secs(10));
    let mut cap = spawn(
        "capture",
        &["listen", "--config", c.capture.to_str().unwrap(), "--stats"],
    );
    cap.wait_err("capture started", Duration::from_secs(20));
    let mut inf = spawn(
        "inference",
        &[
            "serve-inference",
            "--model",
            m,
            "--config",
            c.inference.to_str().unwrap(),
            "--stats",
        ],
    );
    inf.wait_err("receiving audio", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500)); // the peers connect
    let play = Command::new("paplay")
        .arg("--device=vmic")
        .arg(&clip)
        .status()
        .unwrap();
    assert!(play.success());
    let got = act.wait_out(Duration::from_secs(5), keyword_of);
    assert_eq!(
        got.as_deref(),
        Some(keyword.as_str()),
        "no event in the third process"
    );
    std::thread::sleep(Duration::from_millis(300));
    // stop upstream first, so everything sent can arrive
    let (t_cap, cap_err) = cap.interrupt();
    std::thread::sleep(Duration::from_millis(300));
    let (t_inf, inf_err) = inf.interrupt();
    std::thread::sleep(Duration::from_millis(300));
    let (t_act, act_err) = act.interrupt();
    eprintln!("exits after SIGINT: capture {t_cap:?}, inference {t_inf:?}, actuation {t_act:?}");
    eprintln!("--- capture\n{cap_err}\n--- inference\n{inf_err}\n--- actuation\n{act_err}");
    // every audio block sent while inference listened arrived: none missing on the wire, none
    // dropped at normal load; every event sent arrived
    let sent = stat(&cap_err, "audio.pub", "in");
    let unheard = stat(&cap_err, "audio.pub", "unheard");
    let received = stat(&inf_err, "audio.sub", "in");
    assert!(sent > 200, "capture sent {sent} blocks");
    // exact but for the moment inference joins: zenoh's matching status may tell capture of it a
    // block or two before or after the route exists
    assert!(
        (received + unheard).abs_diff(sent) <= 3,
        "blocks: sent {sent}, unheard {unheard}, received {received}"
    );
    assert_eq!(stat(&inf_err, "audio.sub", "missing"), 0);
    assert_eq!(stat(&inf_err, "audio.sub", "drops"), 0);
    assert_eq!(stat(&inf_err, "inference", "drops"), 0);
    let events = stat(&inf_err, "events.pub", "in");
    assert!(events >= 1);
    assert_eq!(stat(&act_err, "events.sub", "in"), events, "events lost");
    assert_eq!(stat(&act_err, "events.sub", "missing"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sample WAV `times` times over, as one file (a longer simulated microphone).
fn repeated_sample(dir: &Path, times: usize) -> PathBuf {
    let (samples, rate) =
        sepstream_audio::read_audio(&repo_root().join("assets/sample_keywords.wav")).unwrap();
    let p = dir.join("repeated.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&p, spec).unwrap();
    for _ in 0..times {
        for &x in &samples {
            w.write_sample((x * 32767.0).round() as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    p
}

#[test]
fn inference_killed_and_started_again_while_capture_goes_on() {
    let dir = tempdir("restart");
    let c = configs(&dir);
    let wav = repeated_sample(&dir, 4); // 35 s
    let mut act = spawn(
        "actuation",
        &[
            "listen",
            "--config",
            c.actuation.to_str().unwrap(),
            "--json",
            "--stats",
        ],
    );
    act.wait_err("receiving events", Duration::from_secs(10));
    let cap = spawn(
        "capture",
        &[
            "listen",
            "--config",
            c.capture.to_str().unwrap(),
            "--stats",
            "--simulate",
            wav.to_str().unwrap(),
        ],
    );
    let inf_args = [
        "serve-inference",
        "--config",
        c.inference.to_str().unwrap(),
        "--stats",
    ];
    let mut inf = spawn("inference", &inf_args);
    let first = act.wait_out(Duration::from_secs(15), keyword_of);
    assert!(first.is_some(), "no event before the kill");
    // kill -9: no goodbye to the peers
    inf.child.kill().unwrap();
    let _ = inf.child.wait();
    let mut cap = cap;
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        cap.child.try_wait().unwrap().is_none(),
        "capture ended when inference died"
    );
    let mut inf = spawn("inference", &inf_args);
    inf.wait_err("receiving audio", Duration::from_secs(10));
    let resumed = act.wait_out(Duration::from_secs(15), keyword_of);
    assert!(resumed.is_some(), "events did not resume after the restart");
    let (t_cap, cap_err) = cap.interrupt();
    std::thread::sleep(Duration::from_millis(300));
    let (t_inf, _) = inf.interrupt();
    let (t_act, act_err) = act.interrupt();
    eprintln!("exits after SIGINT: capture {t_cap:?}, inference {t_inf:?}, actuation {t_act:?}");
    eprintln!("--- capture\n{cap_err}\n--- actuation\n{act_err}");
    let unheard = stat(&cap_err, "audio.pub", "unheard");
    assert!(
        unheard >= 100,
        "capture counted {unheard} blocks sent while inference was down (1.5 s or more)"
    );
    assert_eq!(
        stat(&cap_err, "capture", "drops"),
        0,
        "capture itself dropped nothing"
    );
    assert!(
        stat(&act_err, "events.sub", "restarts") >= 1,
        "the restarted inference was not seen as a new stream"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_robot_subscribing_after_the_events_began_gets_them_from_then_on() {
    let dir = tempdir("late");
    let wav = repeated_sample(&dir, 3); // 26 s: yes stop left go, three times
    let port = free_port();
    let key = format!("sepstream-test/{}-{port}/events", std::process::id());
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let publisher = spawn(
        "publisher",
        &[
            "listen",
            "--simulate",
            wav.to_str().unwrap(),
            "--stages",
            "capture,inference",
            "--publish",
            &key,
            "--zenoh-listen",
            &endpoint,
            "--stats",
        ],
    );
    // the first round of words (to 8.7 s) goes out before the robot exists
    std::thread::sleep(Duration::from_millis(9500));
    let robot = Command::new(env!("CARGO_BIN_EXE_sepstream"))
        .args(["robot", "--sim", "--realtime", "--duration", "12", "--json"])
        .args(["--subscribe", &key, "--zenoh-connect", &endpoint])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, pub_err) = publisher.interrupt();
    let robot_err = String::from_utf8_lossy(&robot.stderr);
    eprintln!("--- publisher\n{pub_err}\n--- robot\n{robot_err}");
    let published = stat(&pub_err, "events.pub", "in");
    let heard = robot_err.matches("heard ").count() as u64;
    let summary: serde_json::Value =
        serde_json::from_slice(&robot.stdout).expect("robot --json prints its summary");
    let commands = summary["commands"].as_array().unwrap();
    eprintln!(
        "published {published}, robot heard {heard}, commands {}",
        commands.len()
    );
    assert!(heard >= 2, "the robot heard {heard} events");
    assert!(
        heard < published,
        "the robot cannot have heard events sent before it started"
    );
    assert!(!commands.is_empty(), "no keyword became a robot command");
    let _ = std::fs::remove_dir_all(&dir);
}
