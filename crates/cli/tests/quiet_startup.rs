//! The sound libraries' own probing messages (ALSA, its JACK and OSS plugins) stay off stderr
//! unless `--verbose`; a device that cannot be opened is still reported, by name, with a non-zero
//! exit.

use std::process::{Command, Output};

/// Runs `sepstream ARGS` where the sound server cannot be reached (ALSA then probes and
/// complains), with `--verbose` when asked.
fn run(args: &[&str], verbose: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sepstream"));
    c.args(args)
        .env("PULSE_SERVER", "unix:/nonexistent/sepstream-test-socket")
        .env("JACK_NO_START_SERVER", "1");
    if verbose {
        c.arg("--verbose");
    }
    c.output().expect("runs")
}

const LIBRARY_NOISE: [&str; 4] = [
    "ALSA lib",
    "jack server",
    "Cannot connect to server",
    "JackShm",
];

fn noise(s: &str) -> Vec<&str> {
    s.lines()
        .filter(|l| LIBRARY_NOISE.iter().any(|n| l.contains(n)))
        .collect()
}

#[test]
fn device_probing_is_quiet_unless_verbose() {
    for args in [&["devices"][..], &["listen", "--for", "1s"][..]] {
        let quiet = run(args, false);
        let err = String::from_utf8_lossy(&quiet.stderr);
        assert!(
            noise(&err).is_empty(),
            "{args:?} printed library noise:\n{err}"
        );
        let loud = run(args, true);
        let loud_err = String::from_utf8_lossy(&loud.stderr);
        if noise(&loud_err).is_empty() {
            eprintln!(
                "note: {args:?}: the sound libraries printed nothing here even with --verbose"
            );
        }
        if args[0] == "listen" && !quiet.status.success() {
            // No reachable device: the failure is still said, naming the device.
            assert!(
                err.contains("error:") && err.contains("input device"),
                "{err}"
            );
        }
    }
}
