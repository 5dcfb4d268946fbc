//! The width folded into the channels, so 2D layers over (time, width) can feed 1D layers.

use crate::layers::{LayerState, StreamOp, TensorView};
use crate::shape::FrameShape;

/// A `[w][c]` frame read as one column of `w * c` channels: the values do not move, only the
/// shape changes.
#[derive(Clone, Debug)]
pub struct Flatten {
    input: FrameShape,
}

impl Flatten {
    pub fn new(input: FrameShape) -> Self {
        Self { input }
    }
}

impl StreamOp for Flatten {
    fn input(&self) -> FrameShape {
        self.input
    }
    fn output(&self) -> FrameShape {
        FrameShape::new(1, self.input.len())
    }
    fn history_frames(&self) -> usize {
        0
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        Vec::new()
    }
    fn flops_per_frame(&self) -> u64 {
        0
    }
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        state.tick(1);
        out.copy_from_slice(input);
        true
    }
    fn forward(&self, input: &[f32], _t: usize) -> Vec<f32> {
        input.to_vec()
    }
}
