//! A network: an ordered list of layers built from a spec and weights, with its streaming state.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::build::{build_layers, FromWeights, Random};
use crate::error::NnError;
use crate::layers::{ConvGeometry, Layer, LayerState};
use crate::shape::FrameShape;
use crate::spec::ModelSpec;
use crate::weights::Weights;

/// An immutable network: layers with their weights. Share it across threads (it is `Send +
/// Sync`); each stream has its own [`NetworkState`].
#[derive(Clone, Debug)]
pub struct Network {
    spec: ModelSpec,
    layers: Vec<Layer>,
}

/// Every buffer one stream through a [`Network`] needs, allocated once by
/// [`Network::new_state`]: per-layer history and the output frame of every layer.
#[derive(Clone, Debug)]
pub struct NetworkState {
    layers: Vec<LayerState>,
    outputs: Vec<Box<[f32]>>,
}

impl NetworkState {
    /// Back to the start of a stream (all history zero).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(LayerState::reset);
        self.outputs.iter_mut().for_each(|o| o.fill(0.0));
    }
}

impl Network {
    /// Loads a spec file and the weights file it names (relative to the spec).
    pub fn load(spec_path: &Path) -> Result<Self, NnError> {
        let spec = ModelSpec::load(spec_path)?;
        let weights_path = spec
            .weights_path(spec_path)
            .ok_or_else(|| NnError::NoWeights {
                path: spec_path.to_path_buf(),
            })?;
        let weights = Weights::load(&weights_path)?;
        Self::build(spec, &weights, spec_path)
    }

    /// Builds a network from a spec and safetensors bytes.
    pub fn from_spec_and_weights(spec: ModelSpec, safetensors: &[u8]) -> Result<Self, NnError> {
        let weights = Weights::from_safetensors(safetensors, Path::new("<weights>"))?;
        Self::from_spec_and_tensors(spec, &weights)
    }

    /// Builds a network from a spec and named tensors; every tensor must be used.
    pub fn from_spec_and_tensors(spec: ModelSpec, weights: &Weights) -> Result<Self, NnError> {
        Self::build(spec, weights, Path::new("<model spec>"))
    }

    /// Builds a network from a spec and named tensors; `origin` names the spec in errors.
    fn build(spec: ModelSpec, weights: &Weights, origin: &Path) -> Result<Self, NnError> {
        let mut source = FromWeights {
            weights,
            used: Vec::new(),
        };
        let layers = build_layers(&spec, &mut source, origin)?;
        if let Some(unused) = weights
            .tensors
            .keys()
            .find(|name| !source.used.contains(name))
        {
            return Err(NnError::UnusedTensor {
                tensor: unused.clone(),
            });
        }
        Ok(Self { spec, layers })
    }

    /// Builds a network with deterministic random weights (for tests, benches and plumbing).
    pub fn random(spec: ModelSpec, seed: u64) -> Result<Self, NnError> {
        let layers = build_layers(
            &spec,
            &mut Random(ChaCha8Rng::seed_from_u64(seed)),
            Path::new("<model spec>"),
        )?;
        Ok(Self { spec, layers })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn input_shape(&self) -> FrameShape {
        FrameShape::new(self.spec.input.width, self.spec.input.channels)
    }

    pub fn output_shape(&self) -> FrameShape {
        self.layers
            .last()
            .map_or(self.input_shape(), |l| l.output())
    }

    /// Input frames consumed per output frame (the product of the time strides).
    pub fn time_stride(&self) -> usize {
        self.layers.iter().map(Layer::time_stride).product()
    }

    /// Reported delay in input frames: each layer's delay scaled by the strides before it.
    pub fn delay(&self) -> usize {
        let mut stride = 1;
        let mut delay = 0;
        for layer in &self.layers {
            delay += layer.delay() * stride;
            stride *= layer.time_stride();
        }
        delay
    }

    /// Receptive field along time, in input frames: how many input frames one output reads.
    pub fn receptive_field(&self) -> usize {
        let mut stride = 1;
        let mut field = 1;
        for layer in &self.layers {
            field += layer.history_frames() * stride;
            stride *= layer.time_stride();
        }
        field
    }

    /// Bytes of streaming state (history only, the minimum the layers need).
    pub fn state_bytes(&self) -> usize {
        self.layers.iter().map(Layer::state_len).sum::<usize>() * std::mem::size_of::<f32>()
    }

    /// A zero state for one stream, with every buffer a hop needs.
    pub fn new_state(&self) -> NetworkState {
        NetworkState {
            layers: self.layers.iter().map(Layer::new_state).collect(),
            outputs: self
                .layers
                .iter()
                .map(|l| vec![0.0; l.output().len()].into_boxed_slice())
                .collect(),
        }
    }

    /// Streaming: one input frame in; the new output frame when the strides produce one.
    /// Never allocates. Panics on a frame of the wrong length ([`Network::try_step`] returns
    /// an error instead).
    pub fn step<'s>(&self, state: &'s mut NetworkState, frame: &[f32]) -> Option<&'s [f32]> {
        assert_eq!(frame.len(), self.input_shape().len(), "input frame length");
        self.step_checked(state, frame)
    }

    /// [`Network::step`] for frames from outside the program (a file, the network): a frame of
    /// the wrong length is [`NnError::FrameLength`], not a panic. Never allocates.
    pub fn try_step<'s>(
        &self,
        state: &'s mut NetworkState,
        frame: &[f32],
    ) -> Result<Option<&'s [f32]>, NnError> {
        let expected = self.input_shape().len();
        if frame.len() != expected {
            return Err(NnError::FrameLength {
                model: self.spec.name.clone(),
                expected,
                actual: frame.len(),
            });
        }
        Ok(self.step_checked(state, frame))
    }

    fn step_checked<'s>(&self, state: &'s mut NetworkState, frame: &[f32]) -> Option<&'s [f32]> {
        for (i, layer) in self.layers.iter().enumerate() {
            let (done, rest) = state.outputs.split_at_mut(i);
            let input: &[f32] = if i == 0 { frame } else { &done[i - 1] };
            if !layer.step(&mut state.layers[i], input, &mut rest[0]) {
                return None;
            }
        }
        state.outputs.last().map(|o| &o[..])
    }

    /// Streaming over several frames at once (`frames.len()` a multiple of the input frame
    /// length); calls `on_output` with every output frame produced. Never allocates.
    pub fn step_many(
        &self,
        state: &mut NetworkState,
        frames: &[f32],
        mut on_output: impl FnMut(&[f32]),
    ) {
        for frame in frames.chunks_exact(self.input_shape().len()) {
            if let Some(out) = self.step(state, frame) {
                on_output(out);
            }
        }
    }

    /// The offline oracle: `t` input frames at once, causal zero padding, layer after layer.
    /// Returns every output frame (`ceil(t / time_stride)` of them), concatenated.
    pub fn forward(&self, frames: &[f32], t: usize) -> Vec<f32> {
        let mut x = frames.to_vec();
        let mut t = t;
        for layer in &self.layers {
            x = layer.forward(&x, t);
            t = t.div_ceil(layer.time_stride());
        }
        x
    }

    /// The offline forward over one fixed window of `t` input frames, as a graph trained on
    /// fixed windows computes it: every `centered` layer is zero padded in time on both sides
    /// of the window (`(k_t - 1) * d / 2` frames before, its reported delay, and the rest
    /// after), instead of causally; every other layer is causal as in [`Network::forward`].
    /// This equals TensorFlow's 'SAME' padding wherever that pads `floor(total / 2)` =
    /// `(k_t - 1) * d / 2` frames before (odd kernels with stride 1, and the window lengths
    /// the importer checks). Returns every output frame (`ceil(t / time_stride)`).
    pub fn forward_window(&self, frames: &[f32], t: usize) -> Vec<f32> {
        let mut x = frames.to_vec();
        let mut t = t;
        for layer in &self.layers {
            let t_out = t.div_ceil(layer.time_stride());
            x = match layer.geometry() {
                Some(g) if g.centered => centered_window(layer, g, &x, t),
                _ => layer.forward(&x, t),
            };
            t = t_out;
        }
        x
    }

    /// Every buffer [`Network::forward_window_into`] needs for windows of up to `max_frames`
    /// input frames, allocated once.
    pub fn new_window_scratch(&self, max_frames: usize) -> WindowScratch {
        let mut longest = self.input_shape().len() * max_frames.max(1);
        let mut t = max_frames.max(1);
        for layer in &self.layers {
            let padded = match layer.geometry() {
                Some(g) if g.centered => centered_padding(g, t).2,
                _ => t,
            };
            longest = longest
                .max(padded * layer.input().len())
                .max(padded.div_ceil(layer.time_stride()) * layer.output().len());
            t = t.div_ceil(layer.time_stride());
        }
        WindowScratch {
            states: self.layers.iter().map(Layer::new_state).collect(),
            a: vec![0.0; longest],
            b: vec![0.0; longest],
            zeros: vec![
                0.0;
                self.layers
                    .iter()
                    .map(|l| l.input().len())
                    .max()
                    .unwrap_or(0)
            ],
            max_frames: max_frames.max(1),
        }
    }

    /// [`Network::forward_window`] without allocating: every layer is streamed
    /// ([`Layer::step`] from a reset state) over its window, with the zero frames a `centered`
    /// layer has on both sides, in buffers made by [`Network::new_window_scratch`]. Returns the
    /// last output frame. Panics when `t` is 0 or more than the scratch was made for, or
    /// `frames` is not `t` input frames.
    pub fn forward_window_into<'s>(
        &self,
        scratch: &'s mut WindowScratch,
        frames: &[f32],
        t: usize,
    ) -> &'s [f32] {
        assert!(t > 0 && t <= scratch.max_frames, "window of {t} frames");
        assert_eq!(frames.len(), t * self.input_shape().len(), "window length");
        let WindowScratch {
            states,
            a,
            b,
            zeros,
            ..
        } = scratch;
        a[..frames.len()].copy_from_slice(frames);
        let (mut src, mut dst) = (a, b);
        let mut t = t;
        for (layer, state) in self.layers.iter().zip(states.iter_mut()) {
            state.reset();
            let (input, output) = (layer.input().len(), layer.output().len());
            let (lead, skip, len) = match layer.geometry() {
                Some(g) if g.centered => centered_padding(g, t),
                _ => (0, 0, t),
            };
            let t_out = t.div_ceil(layer.time_stride());
            let mut produced = 0;
            let mut kept = 0;
            for i in 0..len {
                let frame = if i < lead || i >= lead + t {
                    &zeros[..input]
                } else {
                    &src[(i - lead) * input..(i - lead + 1) * input]
                };
                if kept == t_out {
                    break;
                }
                let at = kept * output;
                if layer.step(state, frame, &mut dst[at..at + output]) {
                    if produced >= skip {
                        kept += 1;
                    }
                    produced += 1;
                }
            }
            debug_assert_eq!(kept, t_out);
            std::mem::swap(&mut src, &mut dst);
            t = t_out;
        }
        let n = self.output_shape().len();
        &src[(t - 1) * n..t * n]
    }

    /// The weights in the layout the spec's weights file uses.
    pub fn weights(&self) -> Weights {
        let mut w = Weights::default();
        for layer in &self.layers {
            for (name, t) in layer.tensors() {
                w.insert(name, t.shape, t.data.to_vec());
            }
        }
        w
    }

    /// Writes the weights as a safetensors file that [`Network::load`] reads back.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), NnError> {
        self.weights().save(path)
    }
}

/// One centred layer over a window of `t` frames with zero padding on both sides: output `j`
/// reads inputs `j*s - delay + x*d`, x = 0..k_t (zeros outside `0..t`). Runs the causal
/// oracle over the window with zero frames added before and after, and keeps the outputs that
/// line up.
fn centered_window(layer: &Layer, g: &ConvGeometry, x: &[f32], t: usize) -> Vec<f32> {
    let t_out = t.div_ceil(g.s_t);
    let (lead, q, len) = centered_padding(g, t);
    let frame = g.input.len();
    let mut padded = vec![0.0; len * frame];
    padded[lead * frame..(lead + t) * frame].copy_from_slice(x);
    let y = layer.forward(&padded, len);
    let out = layer.output().len();
    y[q * out..(q + t_out) * out].to_vec()
}

/// How a centred layer pads a window of `t` frames: (zero frames before it, causal outputs of
/// the padded sequence to skip, padded length). Causal output i of the padded sequence reads
/// padded frames i*s - span ..= i*s; with `lead` zero frames in front that is window frame
/// i*s - span - lead. Output j needs window frame j*s - before, so i = j + q where
/// q*s = span + lead - before.
fn centered_padding(g: &ConvGeometry, t: usize) -> (usize, usize, usize) {
    let s = g.s_t;
    let span = g.history_frames();
    let before = g.delay();
    let t_out = t.div_ceil(s);
    let q = (span - before).div_ceil(s);
    let lead = q * s + before - span;
    let len = (lead + t).max((t_out - 1 + q) * s + 1);
    (lead, q, len)
}

/// Buffers for [`Network::forward_window_into`]: a state per layer and two frame buffers as long
/// as the longest (padded) window any layer sees. Made by [`Network::new_window_scratch`].
#[derive(Clone, Debug)]
pub struct WindowScratch {
    states: Vec<LayerState>,
    a: Vec<f32>,
    b: Vec<f32>,
    zeros: Vec<f32>,
    max_frames: usize,
}

impl WindowScratch {
    /// The longest window (input frames) it was made for.
    pub fn max_frames(&self) -> usize {
        self.max_frames
    }
}

/// A network is shared across threads; a state moves to the thread that streams through it.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Network>();
    send_sync::<NetworkState>();
};
