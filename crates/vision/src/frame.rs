//! Frames: depth images (f32 metres or u16 millimetres) and camera images (grey or RGB), row access.

use crate::VisionError;

/// A row-major image of `height` rows of `width * channels` values, layout `[row][col][channel]`.
///
/// A row is exactly what the streaming engine takes as one frame (width = columns,
/// channels = pixel channels), so `row(y)` can be handed to a row-streaming network directly
/// once converted to f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<T> {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<T>,
}

/// Depth in metres along the optical axis (z in the camera frame); `0.0` = no return.
pub type DepthFrame = Frame<f32>;
/// Depth in millimetres (the usual sensor and 16-bit PNG format); `0` = no return.
pub type DepthFrameMm = Frame<u16>;
/// An 8-bit camera image, 1 (grey) or 3 (RGB) channels.
pub type ImageFrame = Frame<u8>;

impl<T: Copy + Default> Frame<T> {
    /// A frame of default (zero) values.
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Frame {
            width,
            height,
            channels,
            data: vec![T::default(); width * height * channels],
        }
    }

    /// Wraps `data` (`height * width * channels` values, row-major, channel fastest).
    pub fn from_vec(
        width: usize,
        height: usize,
        channels: usize,
        data: Vec<T>,
    ) -> Result<Self, VisionError> {
        let expected = width * height * channels;
        if data.len() != expected || channels == 0 {
            return Err(VisionError::FrameSize {
                expected,
                actual: data.len(),
            });
        }
        Ok(Frame {
            width,
            height,
            channels,
            data,
        })
    }
}

impl<T> Frame<T> {
    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Values per pixel.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Values per row (`width * channels`).
    pub fn row_len(&self) -> usize {
        self.width * self.channels
    }
    /// All values, row-major.
    pub fn data(&self) -> &[T] {
        &self.data
    }
    /// All values, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
    /// Row `y` (panics if `y >= height`, like slice indexing).
    pub fn row(&self, y: usize) -> &[T] {
        let n = self.row_len();
        &self.data[y * n..(y + 1) * n]
    }
    /// Row `y`, mutable.
    pub fn row_mut(&mut self, y: usize) -> &mut [T] {
        let n = self.row_len();
        &mut self.data[y * n..(y + 1) * n]
    }
    /// Iterator over rows, top to bottom (the order a rolling-shutter sensor reads them out).
    pub fn rows(&self) -> std::slice::ChunksExact<'_, T> {
        self.data.chunks_exact(self.row_len().max(1))
    }
    /// Value at column `x`, row `y`, channel `c`.
    pub fn get(&self, x: usize, y: usize, c: usize) -> Option<&T> {
        if x >= self.width || y >= self.height || c >= self.channels {
            return None;
        }
        self.data.get((y * self.width + x) * self.channels + c)
    }
    /// Consumes the frame, returning its values.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
}

impl DepthFrame {
    /// Converts to millimetres (rounded, saturating; invalid stays 0).
    pub fn to_mm(&self) -> DepthFrameMm {
        let mut out = DepthFrameMm::new(self.width, self.height, self.channels);
        metres_to_mm_into(&self.data, &mut out.data);
        out
    }
}

impl DepthFrameMm {
    /// Converts to metres.
    pub fn to_metres(&self) -> DepthFrame {
        let mut out = DepthFrame::new(self.width, self.height, self.channels);
        for (o, &v) in out.data.iter_mut().zip(&self.data) {
            *o = v as f32 * 1e-3;
        }
        out
    }
}

/// Metres to millimetres, element-wise (no allocation).
pub fn metres_to_mm_into(metres: &[f32], mm: &mut [u16]) {
    for (o, &v) in mm.iter_mut().zip(metres) {
        *o = if v.is_finite() && v > 0.0 {
            (v * 1000.0).round().min(u16::MAX as f32) as u16
        } else {
            0
        };
    }
}

/// How a depth row becomes the network's input row.
///
/// The perception network takes **inverse depth** `1/z` (1/m): the floor seen by a level camera
/// then has a constant vertical gradient and vertical surfaces a zero one, which a linear filter
/// can tell apart. Invalid pixels (0, NaN) and pixels beyond `max_range` become 0 (= far);
/// depths below `min_range` are clamped to it. Holes of at most `max_hole` invalid pixels
/// between two valid ones in a row (sensor dropouts) are filled with the nearer neighbour, so a
/// dropout does not punch a false edge into the gradient filters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthEncoding {
    /// Nearest depth the sensor reports (m).
    pub min_range: f32,
    /// Farthest depth used (m).
    pub max_range: f32,
    /// Longest run of invalid pixels filled from its neighbours.
    pub max_hole: usize,
}

impl Default for DepthEncoding {
    fn default() -> Self {
        DepthEncoding {
            min_range: 0.1,
            max_range: 8.0,
            max_hole: 2,
        }
    }
}

impl DepthEncoding {
    /// Encodes one depth value (metres).
    #[inline]
    pub fn encode(&self, z: f32) -> f32 {
        if z.is_nan() || z <= 0.0 || !z.is_finite() || z > self.max_range {
            0.0
        } else {
            1.0 / z.max(self.min_range)
        }
    }
    /// Encodes a row of metres into `out` (same length; no allocation).
    pub fn encode_row(&self, row: &[f32], out: &mut [f32]) {
        for (o, &z) in out.iter_mut().zip(row) {
            *o = self.encode(z);
        }
        self.fill_holes(out);
    }
    /// Encodes a row of millimetres into `out`.
    pub fn encode_row_mm(&self, row: &[u16], out: &mut [f32]) {
        for (o, &z) in out.iter_mut().zip(row) {
            *o = self.encode(z as f32 * 1e-3);
        }
        self.fill_holes(out);
    }
    /// Fills runs of at most `max_hole` zeros that have a valid value on both sides with the
    /// larger (nearer) of the two. In place, no allocation.
    pub fn fill_holes(&self, s: &mut [f32]) {
        if self.max_hole == 0 {
            return;
        }
        let mut i = 1;
        while i < s.len() {
            if s[i] == 0.0 && s[i - 1] > 0.0 {
                let mut j = i;
                while j < s.len() && s[j] == 0.0 && j - i < self.max_hole + 1 {
                    j += 1;
                }
                if j < s.len() && s[j] > 0.0 && j - i <= self.max_hole {
                    let v = s[i - 1].max(s[j]);
                    s[i..j].fill(v);
                }
                i = j;
            } else {
                i += 1;
            }
        }
    }
}

/// Converts an 8-bit image row to f32 in [0, 1] (no allocation).
pub fn image_row_to_f32(row: &[u8], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v as f32 / 255.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_conversion_round_trip() {
        let mut f = DepthFrame::new(3, 2, 1);
        f.row_mut(1).copy_from_slice(&[1.0, 0.0, 2.5]);
        assert_eq!(f.row(1), &[1.0, 0.0, 2.5]);
        assert_eq!(f.rows().count(), 2);
        let mm = f.to_mm();
        assert_eq!(mm.row(1), &[1000, 0, 2500]);
        assert_eq!(mm.to_metres(), f);
        assert!(Frame::<u8>::from_vec(2, 2, 3, vec![0; 11]).is_err());
    }

    #[test]
    fn inverse_depth_encoding() {
        let e = DepthEncoding::default();
        assert_eq!(e.encode(0.0), 0.0);
        assert_eq!(e.encode(f32::NAN), 0.0);
        assert_eq!(e.encode(100.0), 0.0);
        assert_eq!(e.encode(2.0), 0.5);
        assert_eq!(e.encode(0.01), 10.0);
        let mut row = [0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0];
        e.fill_holes(&mut row);
        assert_eq!(
            row,
            [0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
    }
}
