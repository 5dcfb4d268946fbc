//! Pipeline settings (configs/pipeline.toml): edge capacities and overload policies, stage deadlines,
//! capture ring and block sizes, stats interval; which stages run in this process and which edges
//! cross to other processes over zenoh. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::PipelineError;

/// What a full edge does with a new item.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OverloadPolicy {
    /// Discard the oldest queued item to make room (the freshest data wins; for audio).
    DropOldest,
    /// Discard the new item (what is queued wins; for events that must stay in order).
    DropNewest,
    /// Wait for room (never allowed on an edge fed by a capture source).
    Block,
}

impl std::fmt::Display for OverloadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OverloadPolicy::DropOldest => "drop_oldest",
            OverloadPolicy::DropNewest => "drop_newest",
            OverloadPolicy::Block => "block",
        })
    }
}

/// One edge (channel) between two stages.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Items the channel holds.
    pub capacity: usize,
    /// What happens when it is full.
    pub policy: OverloadPolicy,
    /// A zenoh key expression: the edge crosses processes (or hosts) as messages on this key.
    /// Absent: a local crossbeam channel, both stages in this process.
    #[serde(default)]
    pub zenoh_key: Option<String>,
    /// On a zenoh edge, a message that arrives more than this long after its capture time is
    /// counted late (it is still delivered), milliseconds.
    #[serde(default = "default_late_ms")]
    pub late_ms: f64,
}

fn default_late_ms() -> f64 {
    100.0
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            capacity: 64,
            policy: OverloadPolicy::DropOldest,
            zenoh_key: None,
            late_ms: default_late_ms(),
        }
    }
}

/// Which stages of the graph this process runs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Stage names (e.g. `["capture"]`); empty: every stage.
    pub stages: Vec<String>,
}

/// How this process joins the zenoh network (used only when an edge has a `zenoh_key`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ZenohConfig {
    /// `peer` (talk to other peers directly; no router needed) or `client` (through a router).
    pub mode: String,
    /// Endpoints to listen on, e.g. `["tcp/127.0.0.1:7447"]`; empty: zenoh's default.
    pub listen: Vec<String>,
    /// Endpoints to connect to (other peers, or a router such as `tcp/10.0.0.1:7447`).
    pub connect: Vec<String>,
    /// Find peers by UDP multicast scouting on the local network.
    pub multicast_scouting: bool,
}

impl Default for ZenohConfig {
    fn default() -> Self {
        ZenohConfig {
            mode: "peer".into(),
            listen: Vec::new(),
            connect: Vec::new(),
            multicast_scouting: true,
        }
    }
}

/// Per-stage settings.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Time budget for one item (one `process` call), milliseconds; longer calls count as misses.
    pub deadline_ms: f64,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig { deadline_ms: 10.0 }
    }
}

/// Capture settings.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// SPSC ring between the audio callback and the capture stage, seconds of audio.
    pub ring_seconds: f64,
    /// Audio per block sent to inference, milliseconds (at most 1024 samples per block).
    pub block_ms: f64,
    /// Frames per callback asked of the device; 0 = the backend's default.
    pub buffer_frames: u32,
    /// No audio from the device for this long (after it started) ends the run with an error;
    /// at least four of the device's mean callback periods are always allowed.
    pub stall_timeout_s: f64,
    /// The first callback must arrive within this long after the stream starts.
    pub start_timeout_s: f64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            ring_seconds: 2.0,
            block_ms: 10.0,
            buffer_frames: 0,
            stall_timeout_s: 0.5,
            start_timeout_s: 5.0,
        }
    }
}

/// Stats printing.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Seconds between periodic stats lines (`--stats`).
    pub interval_s: f64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { interval_s: 5.0 }
    }
}

/// The text of `configs/pipeline.toml`, compiled in.
pub const SHIPPED_PIPELINE_TOML: &str = include_str!("../../../configs/pipeline.toml");

/// The whole pipeline configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Capture ring and blocks.
    pub capture: CaptureConfig,
    /// Stats printing.
    pub stats: StatsConfig,
    /// Edges by name (`audio`, `events`); missing ones get [`EdgeConfig::default`].
    pub edges: BTreeMap<String, EdgeConfig>,
    /// Stages by name (`capture`, `inference`, `actuation`); missing ones get [`StageConfig::default`].
    pub stages: BTreeMap<String, StageConfig>,
    /// The stages this process runs (default: all).
    pub process: ProcessConfig,
    /// The zenoh session, for edges with a `zenoh_key`.
    pub zenoh: ZenohConfig,
}

impl PipelineConfig {
    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml_str(s: &str, origin: &str) -> Result<Self, PipelineError> {
        let cfg: PipelineConfig = toml::from_str(s).map_err(|e| PipelineError::Config {
            origin: origin.into(),
            reason: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// The settings the project ships in `configs/pipeline.toml`, compiled in, so a program
    /// gets them from any folder.
    pub fn shipped() -> Self {
        Self::from_toml_str(SHIPPED_PIPELINE_TOML, "bundled:pipeline.toml")
            .expect("configs/pipeline.toml is valid (a test checks it)")
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Config {
            origin: path.display().to_string(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    fn validate(&self, origin: &str) -> Result<(), PipelineError> {
        let bad = |reason: String| {
            Err(PipelineError::Config {
                origin: origin.into(),
                reason,
            })
        };
        for (name, e) in &self.edges {
            if e.capacity == 0 || e.capacity > 1 << 20 {
                return bad(format!(
                    "edges.{name}.capacity = {} (must be 1..=1048576)",
                    e.capacity
                ));
            }
            if let Some(key) = &e.zenoh_key {
                if key.is_empty()
                    || key.starts_with('/')
                    || key.ends_with('/')
                    || key.contains("//")
                {
                    return bad(format!(
                        "edges.{name}.zenoh_key = {key:?} (a key expression like \"sepstream/audio\": no empty chunks, no leading or trailing '/')"
                    ));
                }
                if e.policy == OverloadPolicy::Block {
                    return bad(format!(
                        "edges.{name}: policy \"block\" on a zenoh edge would stall the network receiver; use drop_oldest or drop_newest"
                    ));
                }
            }
            if !(e.late_ms.is_finite() && e.late_ms > 0.0) {
                return bad(format!(
                    "edges.{name}.late_ms = {} (must be > 0)",
                    e.late_ms
                ));
            }
        }
        if !matches!(self.zenoh.mode.as_str(), "peer" | "client") {
            return bad(format!(
                "zenoh.mode = {:?} (must be \"peer\" or \"client\")",
                self.zenoh.mode
            ));
        }
        for ep in self.zenoh.listen.iter().chain(&self.zenoh.connect) {
            if !ep.contains('/') {
                return bad(format!(
                    "zenoh endpoint {ep:?} (expected PROTOCOL/ADDRESS, e.g. tcp/127.0.0.1:7447)"
                ));
            }
        }
        for (name, s) in &self.stages {
            if !(s.deadline_ms.is_finite() && s.deadline_ms > 0.0) {
                return bad(format!(
                    "stages.{name}.deadline_ms = {} (must be > 0)",
                    s.deadline_ms
                ));
            }
        }
        let c = &self.capture;
        if !(c.ring_seconds > 0.05 && c.ring_seconds <= 60.0) {
            return bad(format!(
                "capture.ring_seconds = {} (must be in (0.05, 60])",
                c.ring_seconds
            ));
        }
        if !(c.block_ms >= 1.0 && c.block_ms <= 100.0) {
            return bad(format!(
                "capture.block_ms = {} (must be in [1, 100])",
                c.block_ms
            ));
        }
        if !(c.stall_timeout_s > 0.0 && c.start_timeout_s > 0.0) {
            return bad("capture.stall_timeout_s and start_timeout_s must be > 0".into());
        }
        if self.stats.interval_s.is_nan() || self.stats.interval_s <= 0.0 {
            return bad(format!(
                "stats.interval_s = {} (must be > 0)",
                self.stats.interval_s
            ));
        }
        Ok(())
    }

    /// The settings of edge `name` (defaults when absent).
    pub fn edge(&self, name: &str) -> EdgeConfig {
        self.edges.get(name).cloned().unwrap_or_default()
    }

    /// Whether this process runs stage `name` (`[process] stages`, empty = all).
    pub fn runs(&self, name: &str) -> bool {
        self.process.stages.is_empty() || self.process.stages.iter().any(|s| s == name)
    }

    /// Whether any edge crosses processes over zenoh.
    pub fn uses_zenoh(&self) -> bool {
        self.edges.values().any(|e| e.zenoh_key.is_some())
    }

    /// The settings of stage `name` (defaults when absent).
    pub fn stage(&self, name: &str) -> StageConfig {
        self.stages.get(name).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies_and_rejects_unknown_keys() {
        let c = PipelineConfig::from_toml_str(
            "[edges.audio]\ncapacity = 8\npolicy = \"drop_oldest\"\n[edges.events]\ncapacity = 4\npolicy = \"block\"\n[stages.inference]\ndeadline_ms = 5\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.edge("audio").policy, OverloadPolicy::DropOldest);
        assert_eq!(c.edge("events").policy, OverloadPolicy::Block);
        assert_eq!(c.stage("inference").deadline_ms, 5.0);
        assert_eq!(c.stage("other").deadline_ms, 10.0);
        let e = PipelineConfig::from_toml_str("[edges.audio]\ncapacity = 8\npolicy = \"x\"\n", "t")
            .unwrap_err();
        assert!(e.to_string().contains("t:"), "{e}");
        assert!(PipelineConfig::from_toml_str("bogus = 1\n", "t").is_err());
        assert!(PipelineConfig::from_toml_str(
            "[edges.audio]\ncapacity = 0\npolicy = \"block\"\n",
            "t"
        )
        .is_err());
    }
}
