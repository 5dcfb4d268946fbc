//! Cost model: parameters, FLOPs, streaming state, receptive field and delay, per layer and
//! per model, with every separable layer compared against its standard-convolution twin.
//!
//! Counting conventions (the same everywhere in this module):
//! - **FLOPs** = 2 x multiply-adds of the layer's weight tensors (one multiply-add = 2 FLOPs).
//!   Biases, activations, pooling and softmax are *not* counted (they are O(outputs), not
//!   O(outputs x fan-in)); layers without weights cost 0 FLOPs.
//! - A convolution is counted at its nominal size: every output position is charged the full
//!   `k_t x k_w` window, including the taps that fall on zero padding (this is the seed's
//!   `H x W x k^2 x C_in x C_out`).
//! - **Per output frame**: the FLOPs to produce one output frame (`out_width x C_out` values).
//!   **Per second of input**: per output frame x output frames per second, where a layer emits
//!   `frame_rate / S` frames per second and `S` is the product of the time strides up to and
//!   including that layer.
//! - **Parameters** are weights plus biases ([`Layer::params`]); the separable-versus-standard
//!   comparison ([`SeparableComparison`]) counts weights only, as the seed does:
//!   standard `k^2 C_in C_out`, separable `k^2 C_in + C_in C_out`, ratio `1/C_out + 1/k^2`
//!   (with `k^2 = k_t k_w` for rectangular kernels).
//! - **Degrees of freedom** of a separable layer = its weights - `C_in`: scaling depthwise filter
//!   `i` by `a != 0` and column `i` of the pointwise matrix by `1/a` gives the same layer.
//! - **State bytes**: the f32 history a layer keeps between hops ([`Layer::state_len`] x 4).

use serde::Serialize;

use crate::kind::LayerKind;
use crate::network::Network;
use crate::shape::FrameShape;

/// The seed's formulas for one convolution layer: standard (full) versus depthwise-separable,
/// weights only, over an `h x w` output (`h = w = 1`: per output position).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeparableComparison {
    pub c_in: usize,
    pub c_out: usize,
    /// Kernel taps `k_t x k_w` (the seed's `k^2`).
    pub taps: usize,
    /// Output positions the FLOPs are counted over (`H x W`).
    pub positions: usize,
    /// `k^2 C_in C_out`.
    pub standard_weights: u64,
    /// `k^2 C_in + C_in C_out`.
    pub separable_weights: u64,
    /// `2 H W k^2 C_in C_out`.
    pub standard_flops: u64,
    /// `2 H W (k^2 C_in + C_in C_out)`.
    pub separable_flops: u64,
    /// `separable / standard` = `1/C_out + 1/k^2` (for weights and for FLOPs alike).
    pub ratio: f64,
    /// `1 - ratio`.
    pub reduction: f64,
    /// Separable weights - `C_in` (the per-channel scale ambiguity).
    pub separable_dof: u64,
}

impl SeparableComparison {
    /// The comparison for a layer with `taps = k_t * k_w` and `positions = H * W`.
    pub fn new(c_in: usize, c_out: usize, taps: usize, positions: usize) -> Self {
        let (ci, co, k, hw) = (c_in as u64, c_out as u64, taps as u64, positions as u64);
        let standard_weights = k * ci * co;
        let separable_weights = k * ci + ci * co;
        let ratio = separable_weights as f64 / standard_weights as f64;
        Self {
            c_in,
            c_out,
            taps,
            positions,
            standard_weights,
            separable_weights,
            standard_flops: 2 * hw * standard_weights,
            separable_flops: 2 * hw * separable_weights,
            ratio,
            reduction: 1.0 - ratio,
            separable_dof: separable_weights.saturating_sub(ci),
        }
    }

    /// The closed form `1/C_out + 1/k^2`, which [`SeparableComparison::ratio`] equals.
    pub fn ratio_formula(&self) -> f64 {
        1.0 / self.c_out as f64 + 1.0 / self.taps as f64
    }
}

/// What a layer is in the separable-versus-standard picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvForm {
    /// A standard convolution (its separable twin is what factorizing it would give).
    Standard,
    /// A depthwise-separable layer (its standard twin is what composing it gives).
    Separable,
}

/// The cost of one layer of a network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerCost {
    pub name: String,
    pub kind: LayerKind,
    pub input: FrameShape,
    pub output: FrameShape,
    /// `(k_t, k_w)` for convolution layers.
    pub kernel: Option<(usize, usize)>,
    /// `(s_t, s_w)` for convolution layers.
    pub stride: Option<(usize, usize)>,
    /// Weights and biases.
    pub params: usize,
    /// Weights only (no biases).
    pub weights: usize,
    /// FLOPs to produce one output frame of this layer.
    pub flops_per_frame: u64,
    /// Input frames of the network per output frame of this layer (product of the time strides
    /// up to and including it).
    pub cumulative_stride: usize,
    /// Output frames per second of input.
    pub frames_per_second: f64,
    /// FLOPs per second of input.
    pub flops_per_second: f64,
    /// Bytes of streaming history this layer keeps.
    pub state_bytes: usize,
    /// Receptive field along time of this layer's outputs, in network input frames.
    pub receptive_field: usize,
    /// Reported delay accumulated up to and including this layer, in network input frames.
    pub delay: usize,
    /// For separable layers: weights - C_in.
    pub dof: Option<usize>,
    /// For standard and separable convolutions: the seed's comparison over this layer's output
    /// width (`positions = out_width`, per output frame).
    pub form: Option<ConvForm>,
    pub comparison: Option<SeparableComparison>,
}

/// The cost of a whole network: its layers and totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCost {
    pub name: String,
    pub frame_rate: f64,
    pub input: FrameShape,
    pub output: FrameShape,
    pub layers: Vec<LayerCost>,
    pub params: usize,
    pub weights: usize,
    /// FLOPs per second of input.
    pub flops_per_second: f64,
    /// Mean FLOPs per input frame (hop): `flops_per_second / frame_rate`.
    pub flops_per_hop_mean: f64,
    /// FLOPs of the heaviest hop, when every layer emits (an input frame index that is a
    /// multiple of the total time stride): the sum of the per-output-frame FLOPs.
    pub flops_per_hop_peak: u64,
    pub state_bytes: usize,
    /// Input frames per output frame of the network.
    pub time_stride: usize,
    pub receptive_field_frames: usize,
    pub receptive_field_ms: f64,
    pub delay_frames: usize,
    pub delay_ms: f64,
}

/// Where a standard or separable convolution stands in the seed's picture: what an op reports
/// through [`crate::layers::StreamOp::conv_shape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub form: ConvForm,
    pub c_in: usize,
    pub c_out: usize,
    /// `k_t x k_w`.
    pub taps: usize,
    /// Output positions per frame (the output width).
    pub positions: usize,
    /// Channel groups of the mixing (a grouped separable layer is no factorization of one
    /// standard convolution).
    pub groups: usize,
}

/// The cost of every layer of `net` and the totals.
pub fn model_cost(net: &Network) -> ModelCost {
    let frame_rate = net.spec().input.frame_rate;
    let mut stride = 1usize;
    let mut field = 1usize;
    let mut delay = 0usize;
    let mut layers = Vec::with_capacity(net.layers().len());
    for layer in net.layers() {
        field += layer.history_frames() * stride;
        delay += layer.delay() * stride;
        stride *= layer.time_stride();
        let (weights, flops_per_frame) = (layer.weight_count(), layer.flops_per_frame());
        let frames_per_second = frame_rate / stride as f64;
        let shape = layer.op.stream_op().conv_shape();
        let comparison = shape
            .filter(|s| s.groups == 1)
            .map(|s| SeparableComparison::new(s.c_in, s.c_out, s.taps, s.positions));
        let dof = shape
            .filter(|s| s.form == ConvForm::Separable && s.groups == 1)
            .map(|s| weights - s.c_in);
        let form = shape.map(|s| s.form);
        let geom = layer.geometry();
        layers.push(LayerCost {
            name: layer.name.clone(),
            kind: layer.kind,
            input: layer.input(),
            output: layer.output(),
            kernel: geom.map(|g| (g.k_t, g.k_w)),
            stride: geom.map(|g| (g.s_t, g.s_w)),
            params: layer.params(),
            weights,
            flops_per_frame,
            cumulative_stride: stride,
            frames_per_second,
            flops_per_second: flops_per_frame as f64 * frames_per_second,
            state_bytes: layer.state_len() * std::mem::size_of::<f32>(),
            receptive_field: field,
            delay,
            dof,
            form,
            comparison,
        });
    }
    let flops_per_second: f64 = layers.iter().map(|l| l.flops_per_second).sum();
    let ms = |frames: usize| frames as f64 * 1000.0 / frame_rate;
    ModelCost {
        name: net.spec().name.clone(),
        frame_rate,
        input: net.input_shape(),
        output: net.output_shape(),
        params: layers.iter().map(|l| l.params).sum(),
        weights: layers.iter().map(|l| l.weights).sum(),
        flops_per_second,
        flops_per_hop_mean: flops_per_second / frame_rate,
        flops_per_hop_peak: layers.iter().map(|l| l.flops_per_frame).sum(),
        state_bytes: net.state_bytes(),
        time_stride: net.time_stride(),
        receptive_field_frames: net.receptive_field(),
        receptive_field_ms: ms(net.receptive_field()),
        delay_frames: net.delay(),
        delay_ms: ms(net.delay()),
        layers,
    }
}
