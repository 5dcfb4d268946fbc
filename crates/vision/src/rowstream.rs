//! Row streaming: a 2D network fed one image row at a time, as a sensor reads the frame out.
//!
//! An image row is one streaming frame (width = columns, channels = pixel channels). Each conv
//! layer keeps `(k_t - 1) * dilation` past rows (its line buffer) and emits an output row as soon
//! as its kernel's rows are in. A centred kernel (`centered = true` in the spec) runs as the
//! causal one and reports a delay of `(k_t - 1) * dilation / 2` rows; [`Network::delay`] sums
//! the layers' delays in input rows.
//!
//! **Frame convention.** At the start of a frame the state is reset (rows above the frame are
//! zero). After the frame's `H` rows, [`RowStreamer::finish_frame`] feeds `D = delay()` zero
//! rows (rows below the frame are zero), so the frame's output is the causal network's output
//! over `H + D` rows: `ceil((H + D) / S)` rows for a total row stride `S`. Output row `j` is
//! centred on input row `j * S - D`. [`offline_frame`] computes the same thing with
//! [`Network::forward`] (the oracle); streaming equals it exactly (same arithmetic order within
//! 1e-5 relative). For a stack of centred stride-1 layers this equals the centred ("same"
//! padded in rows) 2D network on every output row whose receptive field stays inside the frame
//! (tested). Near the top and bottom edges they differ: a centred network zero-pads every
//! layer's input, while here later layers see earlier layers' outputs for rows outside the frame
//! (and the zero *input* rows fed at the end become non-zero after a layer with a bias). For a
//! single conv layer that is the network's first, the two are equal on every row.

use std::sync::Arc;

use sepstream_nn::{Network, NetworkState};

use crate::VisionError;

/// Streams frames row by row through a network, with the frame convention of this module.
pub struct RowStreamer {
    net: Arc<Network>,
    state: NetworkState,
    zero_row: Box<[f32]>,
    rows_in: usize,
}

impl RowStreamer {
    /// A streamer with its state allocated once.
    pub fn new(net: Arc<Network>) -> Self {
        let state = net.new_state();
        let zero_row = vec![0.0; net.input_shape().len()].into_boxed_slice();
        RowStreamer {
            net,
            state,
            zero_row,
            rows_in: 0,
        }
    }

    /// The network.
    pub fn network(&self) -> &Arc<Network> {
        &self.net
    }

    /// Values per input row.
    pub fn row_len(&self) -> usize {
        self.net.input_shape().len()
    }

    /// Reported delay in input rows (centred kernels); also the zero rows fed at frame end.
    pub fn delay(&self) -> usize {
        self.net.delay()
    }

    /// Output rows per frame of `height` input rows: `ceil((height + delay) / stride)`.
    pub fn output_rows(&self, height: usize) -> usize {
        (height + self.delay()).div_ceil(self.net.time_stride())
    }

    /// Starts a frame: zero line buffers.
    pub fn begin_frame(&mut self) {
        self.state.reset();
        self.rows_in = 0;
    }

    /// Input rows fed since `begin_frame` (padding rows included).
    pub fn rows_in(&self) -> usize {
        self.rows_in
    }

    /// One input row; the new output row when the row strides produce one. No allocation.
    pub fn push_row(&mut self, row: &[f32]) -> Result<Option<&[f32]>, VisionError> {
        if row.len() != self.zero_row.len() {
            return Err(VisionError::RowLength {
                expected: self.zero_row.len(),
                actual: row.len(),
            });
        }
        self.rows_in += 1;
        Ok(self.net.step(&mut self.state, row))
    }

    /// Ends a frame: feeds `delay()` zero rows and hands every output row they produce to
    /// `on_row`. No allocation.
    pub fn finish_frame(&mut self, mut on_row: impl FnMut(&[f32])) {
        for _ in 0..self.delay() {
            self.rows_in += 1;
            if let Some(out) = self.net.step(&mut self.state, &self.zero_row) {
                on_row(out);
            }
        }
    }

    /// A whole frame (`height` rows, row-major) streamed row by row; output rows are appended to
    /// `out` (cleared first). Allocates only if `out` must grow.
    pub fn run_frame(
        &mut self,
        frame: &[f32],
        height: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), VisionError> {
        let n = self.row_len();
        if frame.len() != n * height {
            return Err(VisionError::FrameSize {
                expected: n * height,
                actual: frame.len(),
            });
        }
        out.clear();
        self.begin_frame();
        for row in frame.chunks_exact(n.max(1)) {
            if let Some(o) = self.push_row(row)? {
                out.extend_from_slice(o);
            }
        }
        self.finish_frame(|o| out.extend_from_slice(o));
        Ok(())
    }
}

/// The offline oracle for one frame: [`Network::forward`] over the frame's `height` rows plus
/// `delay()` zero rows (allocates).
pub fn offline_frame(net: &Network, frame: &[f32], height: usize) -> Vec<f32> {
    let d = net.delay();
    let mut padded = frame.to_vec();
    padded.resize(frame.len() + d * net.input_shape().len(), 0.0);
    net.forward(&padded, height + d)
}
