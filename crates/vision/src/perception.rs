//! Depth perception: a row-streamed separable network turns inverse depth into an obstacle
//! nearness map; per-sector maxima of that map give the nearest obstacle depth per sector.
//!
//! The shipped network (`configs/depth_sectors.toml`) is **designed by hand**, not trained; see
//! [`hand_designed_weights`]. Its `[frontend]` table says how depth is encoded
//! ([`DepthEncoding`]) and its `[decision]` table how the map is read ([`SectorConfig`]).

use std::path::Path;
use std::sync::Arc;

use sepstream_nn::{ModelSpec, Network, Weights};
use serde::Deserialize;

use crate::geometry::Intrinsics;
use crate::rowstream::RowStreamer;
use crate::{DepthEncoding, DepthFrame, VisionError};

/// Most sectors a [`SectorReading`] holds (fixed size, so readings are `Copy` and handing them
/// over never allocates).
pub const MAX_SECTORS: usize = 16;

/// How the network's output map is read (the spec's `[decision]` table).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorConfig {
    /// Number of equal-width column sectors, left to right in the image (1..=16).
    pub sectors: usize,
    /// The network outputs nearness `q = 1/z - far_inverse_depth` (1/m) on vertical surfaces.
    pub far_inverse_depth: f32,
    /// Nearness below this is "nothing there".
    pub min_nearness: f32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontendTable {
    min_range: f32,
    max_range: f32,
    #[serde(default)]
    max_hole: usize,
}

/// One perception result: nearest obstacle depth per sector, with its timestamps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SectorReading {
    /// Frame number (0 = no frame yet).
    pub seq: u64,
    /// When the frame's first row was captured (s, the loop's clock).
    pub capture_time: f64,
    /// When the result was ready (s).
    pub ready_time: f64,
    /// Sectors in use.
    pub n: usize,
    /// Nearest obstacle depth (m, along the optical axis) per sector; `INFINITY` = none seen.
    pub depth: [f32; MAX_SECTORS],
    /// Per sector, the image-plane x/z slopes of its left and right column edges: a point at
    /// depth z in sector i lies between `z * slope_lo[i]` and `z * slope_hi[i]` to the right of
    /// the optical axis.
    pub slope_lo: [f32; MAX_SECTORS],
    /// See `slope_lo`.
    pub slope_hi: [f32; MAX_SECTORS],
}

impl SectorReading {
    /// The "nothing seen yet" reading (seq 0; everything far; treated as stale by its age).
    pub fn empty() -> Self {
        SectorReading {
            seq: 0,
            capture_time: f64::NEG_INFINITY,
            ready_time: f64::NEG_INFINITY,
            n: 0,
            depth: [f32::INFINITY; MAX_SECTORS],
            slope_lo: [0.0; MAX_SECTORS],
            slope_hi: [0.0; MAX_SECTORS],
        }
    }

    /// Age at time `now` (from capture).
    pub fn age(&self, now: f64) -> f64 {
        now - self.capture_time
    }
}

/// Parses the spec's `[frontend]` and `[decision]` tables.
pub fn perception_config(spec: &ModelSpec) -> Result<(DepthEncoding, SectorConfig), VisionError> {
    let bad = |m: String| VisionError::Spec {
        name: spec.name.clone(),
        message: m,
    };
    let fe: FrontendTable = spec
        .frontend
        .clone()
        .ok_or_else(|| bad("missing [frontend] table (min_range, max_range)".into()))?
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("[frontend]: {e}")))?;
    let sc: SectorConfig = spec
        .decision
        .clone()
        .ok_or_else(|| {
            bad("missing [decision] table (sectors, far_inverse_depth, min_nearness)".into())
        })?
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("[decision]: {e}")))?;
    if sc.sectors == 0 || sc.sectors > MAX_SECTORS {
        return Err(bad(format!(
            "[decision] sectors = {} (must be 1..={MAX_SECTORS})",
            sc.sectors
        )));
    }
    if !(fe.min_range > 0.0 && fe.max_range > fe.min_range) {
        return Err(bad(format!(
            "[frontend] needs 0 < min_range < max_range, got {} and {}",
            fe.min_range, fe.max_range
        )));
    }
    Ok((
        DepthEncoding {
            min_range: fe.min_range,
            max_range: fe.max_range,
            max_hole: fe.max_hole,
        },
        sc,
    ))
}

/// Row-streamed depth perception: feed depth rows (metres) as they are read out; the sector
/// reading is ready as soon as the frame's last row (and the delay's zero rows) are in.
/// Per row: encode into a preallocated buffer, one network step, a max-reduction. No allocation.
pub struct DepthPerception {
    streamer: RowStreamer,
    encoding: DepthEncoding,
    sectors: SectorConfig,
    encoded: Box<[f32]>,
    /// Output column -> sector.
    col_sector: Box<[u8]>,
    out_channels: usize,
    nearness: [f32; MAX_SECTORS],
    reading: SectorReading,
}

impl DepthPerception {
    /// Loads a spec and its weights (e.g. `configs/depth_sectors.toml`).
    pub fn load(spec_path: &Path, intrinsics: &Intrinsics) -> Result<Self, VisionError> {
        let net = Network::load(spec_path)?;
        Self::new(Arc::new(net), intrinsics)
    }

    /// Wraps a network whose spec has the `[frontend]` and `[decision]` tables of this module.
    pub fn new(net: Arc<Network>, intrinsics: &Intrinsics) -> Result<Self, VisionError> {
        let (encoding, sectors) = perception_config(net.spec())?;
        let inp = net.input_shape();
        if inp.channels != 1 || inp.width != intrinsics.width {
            return Err(VisionError::Spec {
                name: net.spec().name.clone(),
                message: format!(
                    "input is {} columns x {} channels; the camera gives {} columns x 1",
                    inp.width, inp.channels, intrinsics.width
                ),
            });
        }
        let out = net.output_shape();
        let n = sectors.sectors;
        let col_sector: Box<[u8]> = (0..out.width)
            .map(|p| ((p * inp.width / out.width) * n / inp.width).min(n - 1) as u8)
            .collect();
        let mut reading = SectorReading::empty();
        reading.n = n;
        for i in 0..n {
            let u0 = (i * inp.width / n) as f64 - 0.5;
            let u1 = ((i + 1) * inp.width / n) as f64 - 0.5;
            reading.slope_lo[i] = ((u0 - intrinsics.cx) / intrinsics.fx) as f32;
            reading.slope_hi[i] = ((u1 - intrinsics.cx) / intrinsics.fx) as f32;
        }
        Ok(DepthPerception {
            encoded: vec![0.0; inp.width].into_boxed_slice(),
            streamer: RowStreamer::new(net),
            encoding,
            sectors,
            col_sector,
            out_channels: out.channels,
            nearness: [0.0; MAX_SECTORS],
            reading,
        })
    }

    /// The row streamer (network, delay).
    pub fn streamer(&self) -> &RowStreamer {
        &self.streamer
    }

    /// Starts a frame captured at `capture_time`.
    pub fn begin_frame(&mut self, seq: u64, capture_time: f64) {
        self.streamer.begin_frame();
        self.nearness = [0.0; MAX_SECTORS];
        self.reading.seq = seq;
        self.reading.capture_time = capture_time;
    }

    fn reduce(nearness: &mut [f32; MAX_SECTORS], col_sector: &[u8], channels: usize, row: &[f32]) {
        // Channel 0 of the map is obstacle nearness.
        for (px, &s) in row.chunks_exact(channels).zip(col_sector) {
            let q = px[0];
            let slot = &mut nearness[s as usize];
            if q > *slot {
                *slot = q;
            }
        }
    }

    /// One depth row (metres, `width` values). No allocation.
    pub fn push_row(&mut self, depth_row: &[f32]) -> Result<(), VisionError> {
        self.encoding.encode_row(depth_row, &mut self.encoded);
        if depth_row.len() != self.encoded.len() {
            return Err(VisionError::RowLength {
                expected: self.encoded.len(),
                actual: depth_row.len(),
            });
        }
        if let Some(out) = self.streamer.push_row(&self.encoded)? {
            Self::reduce(&mut self.nearness, &self.col_sector, self.out_channels, out);
        }
        Ok(())
    }

    /// Ends the frame (feeds the delay's zero rows) and returns the reading, stamped `ready_time`.
    pub fn finish_frame(&mut self, ready_time: f64) -> &SectorReading {
        let (near, cs, ch) = (&mut self.nearness, &self.col_sector, self.out_channels);
        self.streamer
            .finish_frame(|out| Self::reduce(near, cs, ch, out));
        let sc = self.sectors;
        for i in 0..sc.sectors {
            let q = self.nearness[i];
            self.reading.depth[i] = if q > sc.min_nearness {
                1.0 / (q + sc.far_inverse_depth)
            } else {
                f32::INFINITY
            };
        }
        self.reading.ready_time = ready_time;
        &self.reading
    }

    /// A whole frame, row by row.
    pub fn process_frame(
        &mut self,
        frame: &DepthFrame,
        seq: u64,
        capture_time: f64,
        ready_time: f64,
    ) -> Result<SectorReading, VisionError> {
        self.begin_frame(seq, capture_time);
        for row in frame.rows() {
            self.push_row(row)?;
        }
        Ok(*self.finish_frame(ready_time))
    }
}

/// Gain on |vertical inverse-depth gradient| that suppresses the floor.
///
/// For a level pinhole camera at height `h` with vertical focal length `f_y`, the floor's
/// inverse depth is `(v - c_y) / (h f_y)`: its central difference over two rows is
/// `2 / (h f_y)` everywhere, while a vertical surface has the same depth down a column
/// (difference 0). The floor's own inverse depth is at most that of the bottom row,
/// `(H - 1 - c_y) / (h f_y)`; the gain makes `gain * 2 / (h f_y)` exceed it by 50%.
pub fn floor_gain(intrinsics: &Intrinsics, camera_height: f64) -> f32 {
    let s_max = (intrinsics.height as f64 - 1.0 - intrinsics.cy) / (camera_height * intrinsics.fy);
    let grad = 2.0 / (camera_height * intrinsics.fy);
    (1.5 * s_max / grad) as f32
}

/// The hand-designed weights of `configs/depth_sectors.toml` (layers `expand`, `surface`,
/// `pool`), for a level camera at `camera_height` with `intrinsics`:
///
/// - `expand` (pointwise 1 -> 3): three copies of inverse depth `s`.
/// - `surface` (separable 3x5, centred, ReLU): depthwise filters `+g`, `-g` (vertical central
///   difference of `s` averaged over 5 columns) and a 3x5 box mean `m`; pointwise
///   `q = relu(m - gain * (relu(g) + relu(-g)) - far_inverse_depth)`: nearness of vertical
///   surfaces, zero on the floor and on box tops.
/// - `pool` (separable 3x3, stride 2x2, centred, ReLU): a 3x3 mean of `q`, pointwise identity.
pub fn hand_designed_weights(
    spec: &ModelSpec,
    intrinsics: &Intrinsics,
    camera_height: f64,
) -> Result<Weights, VisionError> {
    let (_, sc) = perception_config(spec)?;
    let gain = floor_gain(intrinsics, camera_height);
    let mut w = Weights::default();
    w.insert("expand.weight", vec![3, 1], vec![1.0, 1.0, 1.0]);
    w.insert("expand.bias", vec![3], vec![0.0; 3]);
    // surface.depthwise [3][kt=3][kw=5]; tap x = 0 is the row above the centre, x = 2 below.
    let mut dw = vec![0.0f32; 3 * 3 * 5];
    for y in 0..5 {
        dw[10 + y] = 0.2; // ch0 (+g): below the centre row
        dw[y] = -0.2; //                above
        dw[15 + 10 + y] = -0.2; // ch1 (-g): below
        dw[15 + y] = 0.2; //                 above
        for x in 0..3 {
            dw[30 + x * 5 + y] = 1.0 / 15.0; // ch2: box mean
        }
    }
    w.insert("surface.depthwise.weight", vec![3, 3, 5], dw);
    w.insert("surface.depthwise.bias", vec![3], vec![0.0; 3]);
    w.insert(
        "surface.pointwise.weight",
        vec![1, 3],
        vec![-gain, -gain, 1.0],
    );
    w.insert(
        "surface.pointwise.bias",
        vec![1],
        vec![-sc.far_inverse_depth],
    );
    w.insert("pool.depthwise.weight", vec![1, 3, 3], vec![1.0 / 9.0; 9]);
    w.insert("pool.depthwise.bias", vec![1], vec![0.0]);
    w.insert("pool.pointwise.weight", vec![1, 1], vec![1.0]);
    w.insert("pool.pointwise.bias", vec![1], vec![0.0]);
    Ok(w)
}
