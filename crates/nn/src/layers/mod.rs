//! Layers: immutable ops with a separate streaming state, each with a plain offline forward.

pub mod conv;
pub mod history;

pub use conv::{Conv, ConvGeometry, Depthwise, Pointwise, Separable};
pub use history::History;

use crate::shape::{Activation, FrameShape};

/// What a layer computes. Weights are immutable; per-stream state lives in [`LayerState`].
#[derive(Clone, Debug)]
pub enum Op {
    Conv(Conv),
    Depthwise(Depthwise),
    Pointwise(Pointwise),
    Separable(Separable),
    /// An element-wise activation on its own.
    Activation(FrameShape, Activation),
    /// Streaming global average pooling: mean over the width and the last `frames` frames.
    AvgPool(AvgPool),
    Dense(Dense),
    Softmax(FrameShape),
    /// The width folded into the channels: a `[w][c]` frame read as one column of `w * c`
    /// channels (the values do not move; only the shape changes).
    Flatten(FrameShape),
}

/// One layer of a network: its name (the prefix of its tensors), the spec kind it came from,
/// and the op.
#[derive(Clone, Debug)]
pub struct Layer {
    pub name: String,
    pub kind: String,
    pub op: Op,
}

/// The streaming state of one layer: the past frames it needs, how many frames it has seen,
/// and scratch space for intermediate results. Allocated once by [`Layer::new_state`].
#[derive(Clone, Debug)]
pub struct LayerState {
    history: History,
    frames_seen: u64,
    scratch: Box<[f32]>,
}

impl LayerState {
    /// Back to the start of a stream: zero history.
    pub fn reset(&mut self) {
        self.history.reset();
        self.frames_seen = 0;
        self.scratch.fill(0.0);
    }
}

impl Layer {
    /// Shape of the frames this layer reads.
    pub fn input(&self) -> FrameShape {
        match &self.op {
            Op::Conv(c) => c.geom.input,
            Op::Depthwise(d) => d.geom.input,
            Op::Pointwise(p) => p.input,
            Op::Separable(s) => s.depthwise.geom.input,
            Op::Activation(s, _) | Op::Softmax(s) | Op::Flatten(s) => *s,
            Op::AvgPool(p) => p.input,
            Op::Dense(d) => d.input,
        }
    }

    /// Shape of the frames this layer produces.
    pub fn output(&self) -> FrameShape {
        match &self.op {
            Op::Conv(c) => c.output(),
            Op::Depthwise(d) => d.output(),
            Op::Pointwise(p) => p.output(),
            Op::Separable(s) => s.output(),
            Op::Activation(s, _) | Op::Softmax(s) => *s,
            Op::AvgPool(p) => FrameShape::new(1, p.input.channels),
            Op::Dense(d) => FrameShape::new(1, d.units),
            Op::Flatten(s) => FrameShape::new(1, s.len()),
        }
    }

    /// The convolution geometry, for layers that have one.
    pub fn geometry(&self) -> Option<&ConvGeometry> {
        match &self.op {
            Op::Conv(c) => Some(&c.geom),
            Op::Depthwise(d) => Some(&d.geom),
            Op::Separable(s) => Some(&s.depthwise.geom),
            _ => None,
        }
    }

    /// Input frames per output frame.
    pub fn time_stride(&self) -> usize {
        self.geometry().map_or(1, |g| g.s_t)
    }

    /// Reported delay in this layer's input frames.
    pub fn delay(&self) -> usize {
        self.geometry().map_or(0, |g| g.delay())
    }

    /// Past input frames this layer reads besides the current one: what it adds to a network's
    /// receptive field, in its own input frames ((k_t - 1) * d for convolutions, frames - 1 for
    /// the pooling layer, 0 for stateless layers).
    pub fn history_frames(&self) -> usize {
        match &self.op {
            Op::AvgPool(p) => p.frames - 1,
            _ => self.geometry().map_or(0, |g| g.history_frames()),
        }
    }

    /// Floats of streaming state: (k_t - 1) * d * C_in * W_in for convolutions,
    /// (frames - 1) * C for the pooling layer, 0 for stateless layers.
    pub fn state_len(&self) -> usize {
        match &self.op {
            Op::AvgPool(p) => self.history_frames() * p.input.channels,
            _ => self
                .geometry()
                .map_or(0, |g| self.history_frames() * g.input.len()),
        }
    }

    /// Number of learned parameters (weights and biases).
    pub fn params(&self) -> usize {
        match &self.op {
            Op::Conv(c) => c.weight.len() + c.bias.len(),
            Op::Depthwise(d) => d.weight.len() + d.bias.len(),
            Op::Pointwise(p) => p.weight.len() + p.bias.len(),
            Op::Separable(s) => {
                s.depthwise.weight.len()
                    + s.depthwise.bias.len()
                    + s.pointwise.weight.len()
                    + s.pointwise.bias.len()
            }
            Op::Dense(d) => d.weight.len() + d.bias.len(),
            Op::Activation(..) | Op::AvgPool(_) | Op::Softmax(_) | Op::Flatten(_) => 0,
        }
    }

    /// A fresh (zero) streaming state for this layer.
    pub fn new_state(&self) -> LayerState {
        let (history, scratch) = match &self.op {
            Op::AvgPool(p) => (
                History::new(p.frames - 1, p.input.channels),
                p.input.channels,
            ),
            Op::Separable(s) => (
                History::new(s.depthwise.geom.history_frames(), self.input().len()),
                s.depthwise.output().len(),
            ),
            _ => match self.geometry() {
                Some(g) => (History::new(g.history_frames(), g.input.len()), 0),
                None => (History::new(0, 0), 0),
            },
        };
        LayerState {
            history,
            frames_seen: 0,
            scratch: vec![0.0; scratch].into_boxed_slice(),
        }
    }

    /// Streaming: takes the next input frame; writes an output frame into `out` and returns
    /// true when the time stride produces one. Never allocates.
    pub fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        debug_assert_eq!(input.len(), self.input().len());
        debug_assert_eq!(out.len(), self.output().len());
        let emit = state.frames_seen.is_multiple_of(self.time_stride() as u64);
        match &self.op {
            Op::Conv(c) if emit => c.compute(&state.history, input, out),
            Op::Depthwise(d) if emit => d.compute(&state.history, input, out),
            Op::Separable(s) if emit => s.compute(&state.history, input, &mut state.scratch, out),
            Op::Conv(_) | Op::Depthwise(_) | Op::Separable(_) => {}
            Op::Pointwise(p) => p.compute(input, out),
            Op::Activation(_, a) => {
                out.copy_from_slice(input);
                a.apply_slice(out);
            }
            Op::AvgPool(p) => {
                p.frame_sums(input, &mut state.scratch);
                out.fill(0.0);
                for lag in (1..p.frames).rev() {
                    for (o, s) in out.iter_mut().zip(state.history.lag(lag)) {
                        *o += s;
                    }
                }
                for (o, s) in out.iter_mut().zip(state.scratch.iter()) {
                    *o += s;
                    *o *= p.scale();
                }
                state.history.push(&state.scratch);
            }
            Op::Dense(d) => d.compute(input, out),
            Op::Softmax(_) => softmax_into(input, out),
            Op::Flatten(_) => out.copy_from_slice(input),
        }
        if !matches!(self.op, Op::AvgPool(_)) {
            state.history.push(input);
        }
        state.frames_seen += 1;
        emit
    }

    /// Offline oracle: all `t` input frames at once with causal zero padding; returns the
    /// output frames (their count is `ceil(t / time_stride)`).
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        assert_eq!(input.len(), t * self.input().len(), "forward input length");
        match &self.op {
            Op::Conv(c) => c.forward(input, t),
            Op::Depthwise(d) => d.forward(input, t),
            Op::Pointwise(p) => p.forward(input, t),
            Op::Separable(s) => s.forward(input, t),
            Op::Activation(_, a) => input.iter().map(|&x| a.apply(x)).collect(),
            Op::Flatten(_) => input.to_vec(),
            Op::AvgPool(p) => p.forward(input, t),
            Op::Dense(d) => input
                .chunks_exact(d.input.len())
                .flat_map(|frame| d.forward_frame(frame))
                .collect(),
            Op::Softmax(s) => input
                .chunks_exact(s.len())
                .flat_map(|frame| {
                    let mut out = vec![0.0; frame.len()];
                    softmax_into(frame, &mut out);
                    out
                })
                .collect(),
        }
    }
}

/// Streaming global average pooling over the width and the last `frames` frames.
#[derive(Clone, Debug)]
pub struct AvgPool {
    pub input: FrameShape,
    pub frames: usize,
}

impl AvgPool {
    fn scale(&self) -> f32 {
        1.0 / (self.frames * self.input.width) as f32
    }

    /// Per-channel sums over the width of one frame.
    fn frame_sums(&self, frame: &[f32], sums: &mut [f32]) {
        sums.fill(0.0);
        for pos in frame.chunks_exact(self.input.channels) {
            for (s, x) in sums.iter_mut().zip(pos) {
                *s += x;
            }
        }
    }

    fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let c = self.input.channels;
        let mut sums = vec![0.0; t * c];
        for (frame, s) in input
            .chunks_exact(self.input.len())
            .zip(sums.chunks_exact_mut(c))
        {
            self.frame_sums(frame, s);
        }
        let mut out = vec![0.0; t * c];
        for j in 0..t {
            for ch in 0..c {
                let mut acc = 0.0;
                for back in (0..self.frames).rev() {
                    if let Some(tau) = j.checked_sub(back) {
                        acc += sums[tau * c + ch];
                    }
                }
                out[j * c + ch] = acc * self.scale();
            }
        }
        out
    }
}

/// A fully connected layer over the whole frame (flattened in `[w][c]` order).
#[derive(Clone, Debug)]
pub struct Dense {
    pub input: FrameShape,
    pub units: usize,
    /// Reference layout [units][inputs], as stored in the weights file.
    pub weight: Box<[f32]>,
    pub bias: Box<[f32]>,
    pub activation: Activation,
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

#[cfg(test)]
mod tests {
    //! Small cases worked by hand.
    use super::*;

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
        let layer = Layer {
            name: "dw".into(),
            kind: "depthwise1d".into(),
            op: Op::Depthwise(dw),
        };
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
        let layer = Layer {
            name: "dw".into(),
            kind: "depthwise1d".into(),
            op: Op::Depthwise(dw),
        };
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
        let layer = Layer {
            name: "dw".into(),
            kind: "depthwise2d".into(),
            op: Op::Depthwise(dw),
        };
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
        let layer = Layer {
            name: "c".into(),
            kind: "conv1d".into(),
            op: Op::Conv(conv),
        };
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
        let layer = Layer {
            name: "p".into(),
            kind: "avgpool".into(),
            op: Op::AvgPool(AvgPool {
                input: FrameShape::new(2, 1),
                frames: 2,
            }),
        };
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
}
