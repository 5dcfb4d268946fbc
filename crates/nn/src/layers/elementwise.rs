//! An activation function as a layer of its own (`relu`, `relu6`, `identity`).

use crate::layers::{LayerState, StreamOp, TensorView};
use crate::shape::{Activation, FrameShape};

/// The activation applied to every value of the frame.
#[derive(Clone, Debug)]
pub struct ElementWise {
    shape: FrameShape,
    activation: Activation,
}

impl ElementWise {
    pub fn new(shape: FrameShape, activation: Activation) -> Self {
        Self { shape, activation }
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

impl StreamOp for ElementWise {
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
        out.copy_from_slice(input);
        self.activation.apply_slice(out);
        true
    }
    fn forward(&self, input: &[f32], _t: usize) -> Vec<f32> {
        input.iter().map(|&x| self.activation.apply(x)).collect()
    }
}
