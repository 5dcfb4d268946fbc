//! Shared by the criterion benches: where criterion writes its estimates, and reading them back
#![allow(dead_code)] // each bench uses part of this module
//! after a run so a bench can print ratios of the numbers it just measured.

use std::path::PathBuf;
use std::time::SystemTime;

/// The directory criterion writes to: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
/// else `<workspace>/target/criterion`. Set explicitly so the reader below finds it.
pub fn criterion_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(p).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("criterion")
}

/// A criterion configured from the command line, writing where [`estimate_ns`] reads.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .output_directory(&criterion_dir())
        .without_plots()
        .configure_from_args()
}

/// Criterion's estimate (slope, else mean; the figure it prints) (ns per iteration) of `group/id`, if measured since `since`
/// (a filtered run leaves older results, which must not be mixed into this run's ratios).
pub fn estimate_ns(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(sanitize(group))
        .join(sanitize(id))
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    // The figure criterion prints: the slope of time against iterations when it has one.
    v["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| v["mean"]["point_estimate"].as_f64())
}

/// The fastest criterion sample of `group/id` (ns per iteration), if measured since `since`:
/// on a shared machine the best sample is the least disturbed by other processes.
pub fn best_ns(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(sanitize(group))
        .join(sanitize(id))
        .join("new")
        .join("sample.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let iters = v["iters"].as_array()?;
    let times = v["times"].as_array()?;
    iters
        .iter()
        .zip(times)
        .filter_map(|(n, t)| Some(t.as_f64()? / n.as_f64()?))
        .min_by(f64::total_cmp)
}

/// Criterion's directory name for a benchmark id (the characters it replaces).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect()
}

/// Formats nanoseconds with a readable unit.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}
