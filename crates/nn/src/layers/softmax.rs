//! Softmax over the values of each frame.

use crate::layers::{LayerState, StreamOp, TensorView};
use crate::shape::FrameShape;

/// Each frame's values turned into probabilities (shifted by the maximum for stability).
#[derive(Clone, Debug)]
pub struct Softmax {
    shape: FrameShape,
}

impl Softmax {
    pub fn new(shape: FrameShape) -> Self {
        Self { shape }
    }
}

/// Softmax of `input` into `out` (same length), shifted by the maximum for stability.
pub fn softmax_into(input: &[f32], out: &mut [f32]) {
    let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (o, x) in out.iter_mut().zip(input) {
        *o = (x - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

impl StreamOp for Softmax {
    fn input(&self) -> FrameShape {
        self.shape
    }
    fn output(&self) -> FrameShape {
        self.shape
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
        softmax_into(input, out);
        true
    }
    fn forward(&self, input: &[f32], _t: usize) -> Vec<f32> {
        input
            .chunks_exact(self.shape.len())
            .flat_map(|frame| {
                let mut out = vec![0.0; frame.len()];
                softmax_into(frame, &mut out);
                out
            })
            .collect()
    }
}
