//! A fully connected layer over the whole frame (flattened in `[w][c]` order).

use crate::error::NnError;
use crate::layers::{LayerState, LayerTensors, StreamOp, TensorView};
use crate::shape::{Activation, FrameShape};

/// `units` outputs, each a weighted sum of every value of the frame plus a bias.
#[derive(Clone, Debug)]
pub struct Dense {
    input: FrameShape,
    units: usize,
    /// Reference layout [units][inputs], as stored in the weights file.
    weight: Box<[f32]>,
    bias: Box<[f32]>,
    activation: Activation,
    /// Packed [inputs][units].
    packed: Box<[f32]>,
}

impl Dense {
    pub fn new(
        input: FrameShape,
        units: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        activation: Activation,
    ) -> Self {
        let n = input.len();
        assert_eq!(weight.len(), units * n, "dense weight length");
        assert_eq!(bias.len(), units, "dense bias length");
        let mut packed = vec![0.0; weight.len()];
        for u in 0..units {
            for k in 0..n {
                packed[k * units + u] = weight[u * n + k];
            }
        }
        Self {
            input,
            units,
            weight: weight.into(),
            bias: bias.into(),
            activation,
            packed: packed.into(),
        }
    }

    /// Reads the weight `[units, inputs]` and bias `[units]` from `tensors`.
    pub fn load(
        input: FrameShape,
        units: usize,
        activation: Activation,
        tensors: &mut LayerTensors,
    ) -> Result<Self, NnError> {
        let weight = tensors.get("weight", &Self::weight_shape(input, units))?;
        let bias = tensors.get("bias", &[units])?;
        Ok(Self::new(input, units, weight, bias, activation))
    }

    fn weight_shape(input: FrameShape, units: usize) -> Vec<usize> {
        vec![units, input.len()]
    }

    pub fn input(&self) -> FrameShape {
        self.input
    }
    pub fn units(&self) -> usize {
        self.units
    }
    /// The weight in the reference layout [units][inputs].
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }

    fn compute(&self, input: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        for (a, wrow) in input.iter().zip(self.packed.chunks_exact(self.units)) {
            for (o, w) in out.iter_mut().zip(wrow) {
                *o += a * w;
            }
        }
        self.activation.apply_slice(out);
    }

    fn forward_frame(&self, frame: &[f32]) -> Vec<f32> {
        let n = self.input.len();
        (0..self.units)
            .map(|u| {
                let mut acc = self.bias[u];
                for k in 0..n {
                    acc += self.weight[u * n + k] * frame[k];
                }
                self.activation.apply(acc)
            })
            .collect()
    }
}

impl StreamOp for Dense {
    fn input(&self) -> FrameShape {
        self.input
    }
    fn output(&self) -> FrameShape {
        FrameShape::new(1, self.units)
    }
    fn history_frames(&self) -> usize {
        0
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        TensorView::weight_and_bias(
            ["weight", "bias"],
            Self::weight_shape(self.input, self.units),
            &self.weight,
            &self.bias,
        )
        .into()
    }
    fn flops_per_frame(&self) -> u64 {
        2 * self.weight.len() as u64
    }
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        state.tick(1);
        self.compute(input, out);
        true
    }
    fn forward(&self, input: &[f32], _t: usize) -> Vec<f32> {
        input
            .chunks_exact(self.input.len())
            .flat_map(|frame| self.forward_frame(frame))
            .collect()
    }
}
