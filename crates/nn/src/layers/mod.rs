//! Layers: one file per kind, each an immutable op implementing [`StreamOp`], its state apart.
//!
//! An op holds weights and shapes and never changes; everything one stream needs lives in a
//! [`LayerState`] made once by [`Layer::new_state`]. Every op has two ways to compute: `step`
//! (one frame in, at most one frame out, no allocation) and `forward` (a whole sequence at once
//! with causal zero padding, written plainly: the oracle `step` is tested against).

mod conv;
mod dense;
mod depthwise;
mod elementwise;
mod flatten;
mod geometry;
pub mod history;
mod pointwise;
mod pool;
mod separable;
mod softmax;

pub use conv::Conv;
pub use dense::Dense;
pub use depthwise::Depthwise;
pub use elementwise::ElementWise;
pub use flatten::Flatten;
pub use geometry::ConvGeometry;
pub use history::History;
pub use pointwise::Pointwise;
pub use pool::AvgPool;
pub use separable::Separable;
pub use softmax::{softmax_into, Softmax};

use crate::cost::ConvShape;
use crate::error::NnError;
pub use crate::kernels::Isa;
use crate::kind::LayerKind;
use crate::shape::FrameShape;

/// One tensor of an op as the weights file stores it: its name after the layer's prefix
/// (`weight`, `depthwise.bias`, ...), its shape and its values in the reference layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorView<'a> {
    pub suffix: &'static str,
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

impl<'a> TensorView<'a> {
    /// Whether this is a bias (counted in parameters, not in weights).
    pub fn is_bias(&self) -> bool {
        self.suffix.ends_with("bias")
    }

    /// A weight of `weight_shape` and its bias (one value per output), named `names`
    /// (`["weight", "bias"]`, or a separable half's `["depthwise.weight", "depthwise.bias"]`).
    pub(crate) fn weight_and_bias(
        names: [&'static str; 2],
        weight_shape: Vec<usize>,
        weight: &'a [f32],
        bias: &'a [f32],
    ) -> [TensorView<'a>; 2] {
        [
            TensorView {
                suffix: names[0],
                shape: weight_shape,
                data: weight,
            },
            TensorView {
                suffix: names[1],
                shape: vec![bias.len()],
                data: bias,
            },
        ]
    }
}

/// What every layer kind's op tells the engine. Shapes, state and tensors come from here and
/// nowhere else: the network, the cost model, saving and ensembling all read them.
pub trait StreamOp {
    /// Shape of the frames the op reads.
    fn input(&self) -> FrameShape;
    /// Shape of the frames it produces.
    fn output(&self) -> FrameShape;
    /// Past frames it keeps besides the current one (its addition to the receptive field, in
    /// its own input frames).
    fn history_frames(&self) -> usize;
    /// Values in one remembered frame (the input frame, unless the op keeps a summary).
    fn history_frame_len(&self) -> usize {
        self.input().len()
    }
    /// Values of scratch space a step needs.
    fn scratch_len(&self) -> usize {
        0
    }
    /// The convolution geometry, for ops that have one (strides and delay follow from it).
    fn geometry(&self) -> Option<&ConvGeometry> {
        None
    }
    /// Input frames per output frame.
    fn time_stride(&self) -> usize {
        self.geometry().map_or(1, |g| g.s_t)
    }
    /// Reported delay in input frames.
    fn delay(&self) -> usize {
        self.geometry().map_or(0, ConvGeometry::delay)
    }
    /// For a standard or separable convolution, its channels, taps and output positions (the
    /// cost model compares it with its twin); `None` for every other op.
    fn conv_shape(&self) -> Option<ConvShape> {
        None
    }
    /// The op's tensors, as loaded and saved.
    fn tensors(&self) -> Vec<TensorView<'_>>;
    /// Floating-point operations (a multiply-add is two) to produce one output frame.
    fn flops_per_frame(&self) -> u64;
    /// Streaming: takes the next input frame; writes an output frame into `out` and returns
    /// true when the time stride produces one. Never allocates.
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool;
    /// Offline oracle over `t` frames with causal zero padding; `ceil(t / time_stride)`
    /// output frames.
    fn forward(&self, input: &[f32], t: usize) -> Vec<f32>;
}

/// Declares [`Op`], one variant per op type, with static dispatch of [`StreamOp`].
macro_rules! ops {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// What a layer computes: one variant per op type. Other crates match it with a last
        /// arm for ops they do not handle (`#[non_exhaustive]`).
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub enum Op {
            $($(#[$doc])* $variant($ty)),*
        }

        impl Op {
            /// The op as its [`StreamOp`].
            pub fn stream_op(&self) -> &dyn StreamOp {
                match self {
                    $(Op::$variant(op) => op),*
                }
            }

            #[inline]
            fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
                match self {
                    $(Op::$variant(op) => op.step(state, input, out)),*
                }
            }
        }

        $(impl From<$ty> for Op {
            fn from(op: $ty) -> Self {
                Op::$variant(op)
            }
        })*
    };
}

ops! {
    Conv(Conv),
    Depthwise(Depthwise),
    Pointwise(Pointwise),
    Separable(Separable),
    /// An element-wise activation on its own.
    Activation(ElementWise),
    AvgPool(AvgPool),
    Dense(Dense),
    Softmax(Softmax),
    Flatten(Flatten),
}

/// One layer of a network: its name (the prefix of its tensors), its kind and its op.
#[derive(Clone, Debug)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    pub op: Op,
}

/// The streaming state of one layer: the past frames it needs, how many frames it has seen,
/// and scratch space for intermediate results. Allocated once by [`Layer::new_state`].
#[derive(Clone, Debug)]
pub struct LayerState {
    pub(crate) history: History,
    frames_seen: u64,
    pub(crate) scratch: Box<[f32]>,
}

impl LayerState {
    /// Back to the start of a stream: zero history.
    pub fn reset(&mut self) {
        self.history.reset();
        self.frames_seen = 0;
        self.scratch.fill(0.0);
    }

    /// Counts one input frame; true when a layer of time stride `stride` emits on it.
    #[inline]
    pub(crate) fn tick(&mut self, stride: usize) -> bool {
        let emit = self.frames_seen.is_multiple_of(stride as u64);
        self.frames_seen += 1;
        emit
    }

    /// One step of a layer that reads its past frames: counts the frame, runs `compute` with
    /// the history and the scratch space when time stride `stride` emits, then remembers
    /// `input`. Returns whether it emitted.
    #[inline]
    pub(crate) fn convolve(
        &mut self,
        stride: usize,
        input: &[f32],
        compute: impl FnOnce(&History, &mut [f32]),
    ) -> bool {
        let emit = self.tick(stride);
        if emit {
            compute(&self.history, &mut self.scratch);
        }
        self.history.push(input);
        emit
    }
}

impl Layer {
    /// A layer of `kind` named `name` computing `op`.
    pub fn new(name: impl Into<String>, kind: LayerKind, op: impl Into<Op>) -> Self {
        Self {
            name: name.into(),
            kind,
            op: op.into(),
        }
    }

    fn op(&self) -> &dyn StreamOp {
        self.op.stream_op()
    }

    /// Shape of the frames this layer reads.
    pub fn input(&self) -> FrameShape {
        self.op().input()
    }

    /// Shape of the frames this layer produces.
    pub fn output(&self) -> FrameShape {
        self.op().output()
    }

    /// The convolution geometry, for layers that have one.
    pub fn geometry(&self) -> Option<&ConvGeometry> {
        self.op().geometry()
    }

    /// Input frames per output frame.
    pub fn time_stride(&self) -> usize {
        self.op().time_stride()
    }

    /// Reported delay in this layer's input frames.
    pub fn delay(&self) -> usize {
        self.op().delay()
    }

    /// Past input frames this layer reads besides the current one: what it adds to a network's
    /// receptive field, in its own input frames ((k_t - 1) * d for convolutions, frames - 1 for
    /// the pooling layer, 0 for stateless layers).
    pub fn history_frames(&self) -> usize {
        self.op().history_frames()
    }

    /// Floats of streaming state: the remembered frames times their length.
    pub fn state_len(&self) -> usize {
        self.op().history_frames() * self.op().history_frame_len()
    }

    /// The layer's tensors with their full names (`NAME.SUFFIX`), as the weights file has them.
    pub fn tensors(&self) -> Vec<(String, TensorView<'_>)> {
        self.op()
            .tensors()
            .into_iter()
            .map(|t| (format!("{}.{}", self.name, t.suffix), t))
            .collect()
    }

    /// Number of learned parameters (weights and biases).
    pub fn params(&self) -> usize {
        self.op().tensors().iter().map(|t| t.data.len()).sum()
    }

    /// Number of weights (parameters that are not biases).
    pub fn weight_count(&self) -> usize {
        let tensors = self.op().tensors();
        tensors
            .iter()
            .filter(|t| !t.is_bias())
            .map(|t| t.data.len())
            .sum()
    }

    /// FLOPs to produce one output frame.
    pub fn flops_per_frame(&self) -> u64 {
        self.op().flops_per_frame()
    }

    /// A fresh (zero) streaming state for this layer.
    pub fn new_state(&self) -> LayerState {
        let op = self.op();
        LayerState {
            history: History::new(op.history_frames(), op.history_frame_len()),
            frames_seen: 0,
            scratch: vec![0.0; op.scratch_len()].into_boxed_slice(),
        }
    }

    /// Streaming: takes the next input frame; writes an output frame into `out` and returns
    /// true when the time stride produces one. Never allocates.
    #[inline]
    pub fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        debug_assert_eq!(input.len(), self.input().len());
        debug_assert_eq!(out.len(), self.output().len());
        self.op.step(state, input, out)
    }

    /// Offline oracle: all `t` input frames at once with causal zero padding; returns the
    /// output frames (their count is `ceil(t / time_stride)`).
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        assert_eq!(input.len(), t * self.input().len(), "forward input length");
        self.op().forward(input, t)
    }
}

/// Where the tensors come from while a network is built: a weights file, or seeded random
/// values.
pub trait TensorSource {
    /// The values of tensor `tensor` (full name) of layer `layer`, which must have `shape`.
    fn tensor(&mut self, layer: &str, tensor: &str, shape: &[usize]) -> Result<Vec<f32>, NnError>;
}

/// One layer's view of a [`TensorSource`]: tensors named `PREFIX.SUFFIX`.
pub struct LayerTensors<'s> {
    source: &'s mut dyn TensorSource,
    layer: &'s str,
    prefix: String,
}

impl<'s> LayerTensors<'s> {
    /// The tensors of layer `layer`, named after it.
    pub fn new(source: &'s mut dyn TensorSource, layer: &'s str) -> Self {
        Self {
            source,
            layer,
            prefix: layer.to_string(),
        }
    }

    /// The tensor `PREFIX.suffix`, which must have `shape`.
    pub fn get(&mut self, suffix: &str, shape: &[usize]) -> Result<Vec<f32>, NnError> {
        let name = format!("{}.{suffix}", self.prefix);
        self.source.tensor(self.layer, &name, shape)
    }

    /// The tensors of a part of the layer, named `PREFIX.part.SUFFIX`.
    pub fn part(&mut self, part: &str) -> LayerTensors<'_> {
        LayerTensors {
            source: &mut *self.source,
            layer: self.layer,
            prefix: format!("{}.{part}", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Small cases worked by hand.
    use super::*;
    use crate::shape::Activation;

    fn run_stream(layer: &Layer, frames: &[&[f32]]) -> Vec<Vec<f32>> {
        let mut st = layer.new_state();
        let mut out = vec![0.0; layer.output().len()];
        let mut outs = Vec::new();
        for f in frames {
            if layer.step(&mut st, f, &mut out) {
                outs.push(out.clone());
            }
        }
        outs
    }

    #[test]
    fn impulse_through_three_tap_causal_depthwise_gives_the_filter_reversed_in_time() {
        // weights [w0, w1, w2]: w2 multiplies the newest frame, w0 the oldest.
        let g = ConvGeometry::new(FrameShape::new(1, 1), (3, 1), (1, 1), 1, false);
        let dw = Depthwise::new(g, vec![1.0, 2.0, 3.0], vec![0.0], Activation::Identity);
        let layer = Layer::new("dw", LayerKind::Depthwise1d, dw);
        let frames: [&[f32]; 5] = [&[1.0], &[0.0], &[0.0], &[0.0], &[0.0]];
        let outs = run_stream(&layer, &frames);
        assert_eq!(
            outs,
            vec![vec![3.0], vec![2.0], vec![1.0], vec![0.0], vec![0.0]]
        );
        let offline = layer.forward(&[1.0, 0.0, 0.0, 0.0, 0.0], 5);
        assert_eq!(offline, vec![3.0, 2.0, 1.0, 0.0, 0.0]);
        assert_eq!(layer.state_len(), 2);
    }

    #[test]
    fn dilated_depthwise_reaches_back_dilation_frames_per_tap() {
        let g = ConvGeometry::new(FrameShape::new(1, 2), (2, 1), (1, 1), 3, false);
        // channel 0: out = x[t] + 10 x[t-3]; channel 1: out = -x[t]
        let dw = Depthwise::new(
            g,
            vec![10.0, 1.0, 0.0, -1.0],
            vec![0.0, 0.0],
            Activation::Identity,
        );
        let layer = Layer::new("dw", LayerKind::Depthwise1d, dw);
        let frames: Vec<[f32; 2]> = (1..=5).map(|t| [t as f32, t as f32]).collect();
        let refs: Vec<&[f32]> = frames.iter().map(|f| &f[..]).collect();
        let outs = run_stream(&layer, &refs);
        let ch0: Vec<f32> = outs.iter().map(|o| o[0]).collect();
        assert_eq!(ch0, vec![1.0, 2.0, 3.0, 4.0 + 10.0, 5.0 + 20.0]);
        assert!(outs.iter().zip(1..).all(|(o, t)| o[1] == -(t as f32)));
        assert_eq!(layer.state_len(), 3 * 2);
    }

    #[test]
    fn two_d_depthwise_case_worked_by_hand() {
        // One channel, width 3, kernel 2x3 (time x width), same padding along width.
        // Kernel rows: older frame [1 0 -1], newer frame [0 1 0] (a shift-free copy plus an
        // edge detector on the previous frame).
        let g = ConvGeometry::new(FrameShape::new(3, 1), (2, 3), (1, 1), 1, false);
        let dw = Depthwise::new(
            g,
            vec![1.0, 0.0, -1.0, 0.0, 1.0, 0.0],
            vec![0.5],
            Activation::Identity,
        );
        let layer = Layer::new("dw", LayerKind::Depthwise2d, dw);
        let f0: &[f32] = &[1.0, 2.0, 3.0];
        let f1: &[f32] = &[4.0, 5.0, 6.0];
        let outs = run_stream(&layer, &[f0, f1]);
        // t=0: previous frame is zero padding -> copy of f0 + 0.5
        assert_eq!(outs[0], vec![1.5, 2.5, 3.5]);
        // t=1: f1 + 0.5 + (left - right neighbour of f0): p0: 0 - 2, p1: 1 - 3, p2: 2 - 0
        assert_eq!(outs[1], vec![4.5 - 2.0, 5.5 - 2.0, 6.5 + 2.0]);
        assert_eq!(
            layer.forward(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2),
            outs.concat()
        );
    }

    #[test]
    fn stride_two_emits_on_even_frames_and_reads_the_right_window() {
        // Causal 2-tap sum with stride 2: outputs at t = 0, 2, 4 reading (t-1, t).
        let g = ConvGeometry::new(FrameShape::new(1, 1), (2, 1), (2, 1), 1, false);
        let conv = Conv::new(g, 1, vec![1.0, 1.0], vec![0.0], Activation::Identity);
        let layer = Layer::new("c", LayerKind::Conv1d, conv);
        let xs = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let refs: Vec<&[f32]> = xs.iter().map(std::slice::from_ref).collect();
        let outs = run_stream(&layer, &refs);
        assert_eq!(outs, vec![vec![1.0], vec![2.0 + 3.0], vec![4.0 + 5.0]]);
        assert_eq!(layer.forward(&xs, 5), vec![1.0, 5.0, 9.0]);
    }

    #[test]
    fn width_stride_and_same_padding_give_ceil_width() {
        let g = ConvGeometry::new(FrameShape::new(5, 1), (1, 4), (1, 2), 1, false);
        assert_eq!(g.out_width, 3);
        assert_eq!(g.pad_left(), 1);
        let conv = Conv::new(g, 1, vec![1.0; 4], vec![0.0], Activation::Identity);
        // out p reads columns 2p-1 .. 2p+2: p0: 0..2 -> 1+2+3, p1: 1..4 -> 2+3+4+5, p2: 3..4 -> 4+5
        assert_eq!(
            conv.forward(&[1.0, 2.0, 3.0, 4.0, 5.0], 1),
            vec![6.0, 14.0, 9.0]
        );
    }

    #[test]
    fn avgpool_is_a_running_mean_over_frames_and_width() {
        let layer = Layer::new(
            "p",
            LayerKind::Avgpool,
            AvgPool::new(FrameShape::new(2, 1), 2),
        );
        let frames: [&[f32]; 3] = [&[2.0, 2.0], &[4.0, 4.0], &[6.0, 8.0]];
        let outs = run_stream(&layer, &frames);
        assert_eq!(outs, vec![vec![1.0], vec![3.0], vec![5.5]]);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut out = [0.0; 3];
        softmax_into(&[1.0, 3.0, 2.0], &mut out);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(out[1] > out[2] && out[2] > out[0]);
    }

    #[test]
    fn tensors_name_the_layer_and_count_parameters() {
        let g = ConvGeometry::new(FrameShape::new(1, 2), (3, 1), (1, 1), 1, false);
        let dw = Depthwise::new(g, vec![0.5; 6], vec![0.0; 2], Activation::Identity);
        let pw = Pointwise::new(
            FrameShape::new(1, 2),
            4,
            vec![1.0; 8],
            vec![0.0; 4],
            Activation::Relu,
        );
        let layer = Layer::new("block", LayerKind::Separable1d, Separable::new(dw, pw));
        let names: Vec<String> = layer.tensors().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "block.depthwise.weight",
                "block.depthwise.bias",
                "block.pointwise.weight",
                "block.pointwise.bias"
            ]
        );
        assert_eq!(layer.params(), 6 + 2 + 8 + 4);
        assert_eq!(layer.weight_count(), 6 + 8);
        assert_eq!(layer.flops_per_frame(), 2 * (6 + 8));
    }
}
