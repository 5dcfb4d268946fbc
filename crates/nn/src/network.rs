//! A network: an ordered list of layers built from a spec and weights, with its streaming state.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::NnError;
use crate::layers::{
    AvgPool, Conv, ConvGeometry, Dense, Depthwise, Layer, LayerState, Op, Pointwise, Separable,
};
use crate::limits::{at_most, ModelLimits};
use crate::shape::{Activation, FrameShape};
use crate::spec::{LayerSpec, ModelSpec, LAYER_KINDS};
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

/// Where a layer's tensors come from while a network is built.
trait TensorSource {
    fn tensor(&mut self, layer: &str, tensor: &str, shape: &[usize]) -> Result<Vec<f32>, NnError>;
}

struct FromWeights<'a> {
    weights: &'a Weights,
    used: Vec<String>,
}

impl TensorSource for FromWeights<'_> {
    fn tensor(&mut self, layer: &str, tensor: &str, shape: &[usize]) -> Result<Vec<f32>, NnError> {
        let t = self
            .weights
            .tensors
            .get(tensor)
            .ok_or_else(|| NnError::MissingTensor {
                layer: layer.to_string(),
                tensor: tensor.to_string(),
            })?;
        if t.shape != shape {
            return Err(NnError::WrongShape {
                layer: layer.to_string(),
                tensor: tensor.to_string(),
                expected: shape.to_vec(),
                actual: t.shape.clone(),
            });
        }
        self.used.push(tensor.to_string());
        Ok(t.data.clone())
    }
}

/// What a model being built has asked for so far, against [`ModelLimits`]: every size is
/// checked here before the layer that needs it allocates.
struct Budget<'a> {
    origin: &'a Path,
    limits: ModelLimits,
    params: u128,
    state: u128,
}

impl Budget<'_> {
    fn dimension(&self, layer: &str, what: &str, value: usize) -> Result<(), NnError> {
        at_most(
            self.origin,
            &format!("layer {layer}: {what}"),
            value as u128,
            self.limits.max_dimension,
        )
        .map(drop)
    }

    fn frame(&self, layer: &str, shape: FrameShape) -> Result<(), NnError> {
        let values = shape.width as u128 * shape.channels as u128;
        at_most(
            self.origin,
            &format!("layer {layer}: values in an output frame"),
            values,
            self.limits.max_frame_values,
        )
        .map(drop)
    }

    fn tensor(&mut self, layer: &str, shape: &[usize]) -> Result<(), NnError> {
        let n = shape
            .iter()
            .fold(1u128, |n, &d| n.saturating_mul(d as u128));
        self.params = at_most(
            self.origin,
            &format!("layer {layer}: parameters in the model up to this layer"),
            self.params.saturating_add(n),
            self.limits.max_params,
        )?;
        Ok(())
    }

    fn state(&mut self, layer: &str, frames: usize, frame_len: usize) -> Result<(), NnError> {
        let n = frames as u128 * frame_len as u128;
        self.state = at_most(
            self.origin,
            &format!("layer {layer}: streaming state values in the model up to this layer"),
            self.state.saturating_add(n),
            self.limits.max_state_values,
        )?;
        Ok(())
    }
}

/// A tensor source that checks each tensor's size against the budget before it is made.
struct Bounded<'s, 'b> {
    inner: &'s mut dyn TensorSource,
    budget: Budget<'b>,
}

impl TensorSource for Bounded<'_, '_> {
    fn tensor(&mut self, layer: &str, tensor: &str, shape: &[usize]) -> Result<Vec<f32>, NnError> {
        self.budget.tensor(layer, shape)?;
        self.inner.tensor(layer, tensor, shape)
    }
}

/// Uniform random weights scaled by fan-in (He-like), so activations stay in range.
struct Random(ChaCha8Rng);

impl TensorSource for Random {
    fn tensor(&mut self, _: &str, tensor: &str, shape: &[usize]) -> Result<Vec<f32>, NnError> {
        let n: usize = shape.iter().product();
        let bound = if tensor.ends_with("bias") {
            0.1
        } else {
            let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
            (6.0 / fan_in as f32).sqrt()
        };
        Ok((0..n)
            .map(|_| self.0.random_range(-bound..=bound))
            .collect())
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

    /// The weights in the layout the spec's weights file uses.
    pub fn weights(&self) -> Weights {
        let mut w = Weights::default();
        for layer in &self.layers {
            let n = &layer.name;
            match &layer.op {
                Op::Conv(c) => {
                    let g = &c.geom;
                    let shape = if layer.kind == "conv1d" {
                        vec![c.out_channels, g.input.channels, g.k_t]
                    } else {
                        vec![c.out_channels, g.input.channels, g.k_t, g.k_w]
                    };
                    w.insert(format!("{n}.weight"), shape, c.weight.to_vec());
                    w.insert(format!("{n}.bias"), vec![c.out_channels], c.bias.to_vec());
                }
                Op::Depthwise(d) => insert_depthwise(&mut w, n, &layer.kind, d),
                Op::Pointwise(p) => insert_pointwise(&mut w, n, p),
                Op::Separable(s) => {
                    insert_depthwise(&mut w, &format!("{n}.depthwise"), &layer.kind, &s.depthwise);
                    insert_pointwise(&mut w, &format!("{n}.pointwise"), &s.pointwise);
                }
                Op::Dense(d) => {
                    w.insert(
                        format!("{n}.weight"),
                        vec![d.units, d.input.len()],
                        d.weight.to_vec(),
                    );
                    w.insert(format!("{n}.bias"), vec![d.units], d.bias.to_vec());
                }
                Op::Activation(..) | Op::AvgPool(_) | Op::Softmax(_) | Op::Flatten(_) => {}
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
    let s = g.s_t;
    let span = g.history_frames();
    let before = g.delay();
    let t_out = t.div_ceil(s);
    // Causal output i of the padded sequence reads padded frames i*s - span ..= i*s; with
    // `lead` zero frames in front that is window frame i*s - span - lead. Output j needs
    // window frame j*s - before, so i = j + q where q*s = span + lead - before.
    let q = (span - before).div_ceil(s);
    let lead = q * s + before - span;
    let len = (lead + t).max((t_out - 1 + q) * s + 1);
    let frame = g.input.len();
    let mut padded = vec![0.0; len * frame];
    padded[lead * frame..(lead + t) * frame].copy_from_slice(x);
    let y = layer.forward(&padded, len);
    let out = layer.output().len();
    y[q * out..(q + t_out) * out].to_vec()
}

fn insert_depthwise(w: &mut Weights, name: &str, kind: &str, d: &Depthwise) {
    let g = &d.geom;
    let shape = if kind.ends_with("1d") {
        vec![g.input.channels, g.k_t]
    } else {
        vec![g.input.channels, g.k_t, g.k_w]
    };
    w.insert(format!("{name}.weight"), shape, d.weight.to_vec());
    w.insert(
        format!("{name}.bias"),
        vec![g.input.channels],
        d.bias.to_vec(),
    );
}

fn insert_pointwise(w: &mut Weights, name: &str, p: &Pointwise) {
    w.insert(
        format!("{name}.weight"),
        vec![p.out_channels, p.input.channels / p.groups],
        p.weight.to_vec(),
    );
    w.insert(
        format!("{name}.bias"),
        vec![p.out_channels],
        p.bias.to_vec(),
    );
}

/// Which optional fields each kind accepts, and which it requires.
fn check_fields(name: &str, ls: &LayerSpec) -> Result<(), NnError> {
    let present = [
        ("out_channels", ls.out_channels.is_some()),
        ("kernel", ls.kernel.is_some()),
        ("stride", ls.stride.is_some()),
        ("dilation", ls.dilation.is_some()),
        ("activation", ls.activation.is_some()),
        ("centered", ls.centered.is_some()),
        ("pad_left", ls.pad_left.is_some()),
        ("frames", ls.frames.is_some()),
        ("units", ls.units.is_some()),
        ("groups", ls.groups.is_some()),
    ];
    let (allowed, required): (&[&str], &[&str]) = match ls.kind.as_str() {
        "conv1d" | "conv2d" | "separable1d" | "separable2d" => (
            &[
                "out_channels",
                "kernel",
                "stride",
                "dilation",
                "activation",
                "centered",
                "pad_left",
                "groups",
            ],
            &["out_channels", "kernel"],
        ),
        "depthwise1d" | "depthwise2d" => (
            &[
                "kernel",
                "stride",
                "dilation",
                "activation",
                "centered",
                "pad_left",
            ],
            &["kernel"],
        ),
        "pointwise" => (&["out_channels", "activation", "groups"], &["out_channels"]),
        "dense" => (&["units", "activation"], &["units"]),
        "avgpool" => (&["frames"], &["frames"]),
        "relu" | "relu6" | "identity" | "softmax" | "flatten" => (&[], &[]),
        other => {
            return Err(NnError::UnknownLayerKind {
                layer: name.to_string(),
                kind: other.to_string(),
                known: LAYER_KINDS,
            })
        }
    };
    for (field, is_set) in present {
        if is_set && !allowed.contains(&field) {
            return Err(NnError::InvalidLayer {
                layer: name.to_string(),
                reason: format!("a {} layer takes no `{field}`", ls.kind),
            });
        }
        if !is_set && required.contains(&field) {
            return Err(NnError::InvalidLayer {
                layer: name.to_string(),
                reason: format!("a {} layer needs `{field}`", ls.kind),
            });
        }
    }
    Ok(())
}

/// Every size a layer spec sets, each at most [`ModelLimits::max_dimension`].
fn check_dimensions(budget: &Budget, name: &str, ls: &LayerSpec) -> Result<(), NnError> {
    let pair = |s: Option<crate::spec::Size2>| s.map(|s| s.pair(true));
    let sizes = [
        ("out_channels", ls.out_channels),
        ("kernel (time)", pair(ls.kernel).map(|p| p.0)),
        ("kernel (width)", pair(ls.kernel).map(|p| p.1)),
        ("stride (time)", pair(ls.stride).map(|p| p.0)),
        ("stride (width)", pair(ls.stride).map(|p| p.1)),
        ("dilation", ls.dilation),
        ("frames", ls.frames),
        ("units", ls.units),
        ("groups", ls.groups),
    ];
    for (what, value) in sizes {
        if let Some(v) = value {
            budget.dimension(name, what, v)?;
        }
    }
    Ok(())
}

fn positive(name: &str, what: &str, v: usize) -> Result<usize, NnError> {
    if v == 0 {
        Err(NnError::InvalidLayer {
            layer: name.to_string(),
            reason: format!("{what} must be at least 1, got 0"),
        })
    } else {
        Ok(v)
    }
}

/// Kernel, stride and dilation of a convolution layer spec, checked.
fn geometry(name: &str, ls: &LayerSpec, input: FrameShape) -> Result<ConvGeometry, NnError> {
    let two_d = ls.kind.ends_with("2d");
    let kernel = ls.kernel.expect("checked by check_fields");
    if !two_d && matches!(kernel, crate::spec::Size2::Two(_)) {
        return Err(NnError::InvalidLayer {
            layer: name.to_string(),
            reason: format!("a {} layer takes one kernel size, not a pair", ls.kind),
        });
    }
    let (k_t, k_w) = kernel.pair(two_d);
    let (s_t, s_w) = ls.stride.map_or((1, 1), |s| s.pair(two_d));
    let d = ls.dilation.unwrap_or(1);
    positive(name, "kernel (time)", k_t)?;
    positive(name, "kernel (width)", k_w)?;
    positive(name, "stride (time)", s_t)?;
    positive(name, "stride (width)", s_w)?;
    positive(name, "dilation", d)?;
    let g = ConvGeometry::new(
        input,
        (k_t, k_w),
        (s_t, s_w),
        d,
        ls.centered.unwrap_or(false),
    );
    match ls.pad_left {
        Some(p) if p >= k_w => Err(NnError::InvalidLayer {
            layer: name.to_string(),
            reason: format!("pad_left = {p}, expected at most k_w - 1 = {}", k_w - 1),
        }),
        Some(p) => Ok(g.with_pad_left(p)),
        None => Ok(g),
    }
}

/// The layers of `spec`, every size checked against [`ModelLimits::DEFAULT`] before it is
/// allocated; `origin` names the spec in errors.
fn build_layers(
    spec: &ModelSpec,
    src: &mut dyn TensorSource,
    origin: &Path,
) -> Result<Vec<Layer>, NnError> {
    let limits = ModelLimits::DEFAULT;
    at_most(
        origin,
        "the number of layers",
        spec.layers.len() as u128,
        limits.max_layers,
    )?;
    let mut src = Bounded {
        inner: src,
        budget: Budget {
            origin,
            limits,
            params: 0,
            state: 0,
        },
    };
    let src = &mut src;
    let input = &spec.input;
    src.budget.dimension("input", "width", input.width)?;
    src.budget.dimension("input", "channels", input.channels)?;
    src.budget
        .frame("input", FrameShape::new(input.width, input.channels))?;
    if input.width == 0 || input.channels == 0 {
        return Err(NnError::InvalidSpec(format!(
            "input width and channels must be at least 1, got {}x{}",
            input.width, input.channels
        )));
    }
    if !(input.frame_rate.is_finite() && input.frame_rate > 0.0) {
        return Err(NnError::InvalidSpec(format!(
            "input frame_rate must be a positive number, got {}",
            input.frame_rate
        )));
    }
    if spec.layers.is_empty() {
        return Err(NnError::InvalidSpec("the model has no layers".into()));
    }
    let mut shape = FrameShape::new(input.width, input.channels);
    let mut layers = Vec::with_capacity(spec.layers.len());
    for (index, ls) in spec.layers.iter().enumerate() {
        let name = ls
            .name
            .clone()
            .unwrap_or_else(|| format!("{}{index}", ls.kind));
        check_fields(&name, ls)?;
        check_dimensions(&src.budget, &name, ls)?;
        if layers.iter().any(|l: &Layer| l.name == name) {
            return Err(NnError::InvalidLayer {
                layer: name,
                reason: "another layer has the same name".into(),
            });
        }
        let act = ls.activation.unwrap_or(Activation::Identity);
        let n = name.as_str();
        let op = match ls.kind.as_str() {
            "conv1d" | "conv2d" => {
                let g = geometry(n, ls, shape)?;
                let co = positive(n, "out_channels", ls.out_channels.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(g.out_width, co))?;
                src.budget.state(n, g.history_frames(), shape.len())?;
                let wshape = if ls.kind == "conv1d" {
                    vec![co, shape.channels, g.k_t]
                } else {
                    vec![co, shape.channels, g.k_t, g.k_w]
                };
                let w = src.tensor(n, &format!("{n}.weight"), &wshape)?;
                let b = src.tensor(n, &format!("{n}.bias"), &[co])?;
                Op::Conv(Conv::new(g, co, w, b, act))
            }
            "depthwise1d" | "depthwise2d" => {
                let g = geometry(n, ls, shape)?;
                src.budget.state(n, g.history_frames(), shape.len())?;
                Op::Depthwise(depthwise(src, n, n, &ls.kind, g, act)?)
            }
            "pointwise" => {
                let co = positive(n, "out_channels", ls.out_channels.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(shape.width, co))?;
                Op::Pointwise(pointwise(src, n, n, shape, co, ls.groups, act)?)
            }
            "separable1d" | "separable2d" => {
                let g = geometry(n, ls, shape)?;
                let co = positive(n, "out_channels", ls.out_channels.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(g.out_width, co))?;
                src.budget.state(n, g.history_frames(), shape.len())?;
                let dw = depthwise(src, n, &format!("{n}.depthwise"), &ls.kind, g, act)?;
                let pw = pointwise(
                    src,
                    n,
                    &format!("{n}.pointwise"),
                    dw.output(),
                    co,
                    ls.groups,
                    act,
                )?;
                Op::Separable(Separable {
                    depthwise: dw,
                    pointwise: pw,
                })
            }
            "relu" => Op::Activation(shape, Activation::Relu),
            "relu6" => Op::Activation(shape, Activation::Relu6),
            "identity" => Op::Activation(shape, Activation::Identity),
            "avgpool" => {
                let frames = positive(n, "frames", ls.frames.unwrap_or(0))?;
                src.budget.state(n, frames - 1, shape.channels)?;
                Op::AvgPool(AvgPool {
                    input: shape,
                    frames,
                })
            }
            "dense" => {
                let units = positive(n, "units", ls.units.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(1, units))?;
                let w = src.tensor(n, &format!("{n}.weight"), &[units, shape.len()])?;
                let b = src.tensor(n, &format!("{n}.bias"), &[units])?;
                Op::Dense(Dense::new(shape, units, w, b, act))
            }
            "softmax" => Op::Softmax(shape),
            "flatten" => Op::Flatten(shape),
            _ => unreachable!("check_fields rejects unknown kinds"),
        };
        let layer = Layer {
            name,
            kind: ls.kind.clone(),
            op,
        };
        shape = layer.output();
        // every layer's output frame is kept in the stream's state too
        src.budget.state(&layer.name, 1, shape.len())?;
        layers.push(layer);
    }
    if !spec.labels.is_empty() && spec.labels.len() != shape.len() {
        return Err(NnError::InvalidSpec(format!(
            "{} labels for an output frame of {} values",
            spec.labels.len(),
            shape.len()
        )));
    }
    Ok(layers)
}

fn depthwise(
    src: &mut dyn TensorSource,
    layer: &str,
    prefix: &str,
    kind: &str,
    g: ConvGeometry,
    act: Activation,
) -> Result<Depthwise, NnError> {
    let c = g.input.channels;
    let wshape = if kind.ends_with("1d") {
        vec![c, g.k_t]
    } else {
        vec![c, g.k_t, g.k_w]
    };
    let w = src.tensor(layer, &format!("{prefix}.weight"), &wshape)?;
    let b = src.tensor(layer, &format!("{prefix}.bias"), &[c])?;
    Ok(Depthwise::new(g, w, b, act))
}

fn pointwise(
    src: &mut dyn TensorSource,
    layer: &str,
    prefix: &str,
    input: FrameShape,
    co: usize,
    groups: Option<usize>,
    act: Activation,
) -> Result<Pointwise, NnError> {
    let groups = positive(layer, "groups", groups.unwrap_or(1))?;
    if !input.channels.is_multiple_of(groups) || !co.is_multiple_of(groups) {
        return Err(NnError::InvalidLayer {
            layer: layer.to_string(),
            reason: format!(
                "groups = {groups} must divide both the {} input channels and the {co} output \
                 channels",
                input.channels
            ),
        });
    }
    let w = src.tensor(
        layer,
        &format!("{prefix}.weight"),
        &[co, input.channels / groups],
    )?;
    let b = src.tensor(layer, &format!("{prefix}.bias"), &[co])?;
    Ok(Pointwise::grouped(input, co, groups, w, b, act))
}

/// A network is shared across threads; a state moves to the thread that streams through it.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Network>();
    send_sync::<NetworkState>();
};
