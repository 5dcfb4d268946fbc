//! Keyword events as they leave the inference stage: the word, its audio time (seconds since
//! capture began), the wall-clock time of the decision, and the score; printable as JSON lines.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One detected keyword.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Detection {
    /// The keyword (a label of the model).
    pub keyword: String,
    /// Its index in the model's labels.
    pub label: usize,
    /// Audio time where the word starts, seconds since capture began.
    pub start: f64,
    /// Audio time where the decision's window ends, seconds since capture began.
    pub end: f64,
    /// Smoothed posterior that fired.
    pub score: f32,
    /// Wall-clock time of the decision, seconds since the Unix epoch.
    pub decided_at: f64,
    /// From the capture stage taking the block that completed the word to the decision, ms.
    pub latency_ms: f64,
}

impl Detection {
    /// One JSON object on one line.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl std::fmt::Display for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.3}s  {:<8} score {:.2}  ({:.3}-{:.3} s, latency {:.1} ms)",
            self.end, self.keyword, self.score, self.start, self.end, self.latency_ms
        )
    }
}

/// Now, seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
