//! The one place a spec becomes layers: every field checked, every size bounded, then built.
//!
//! [`build_layers`] walks a spec's layers in order, checks each against its kind's fields
//! ([`LayerKind::fields`]) and against [`ModelLimits`] before anything is allocated, and makes
//! its op in one `match` over [`LayerKind`]; the op reads its tensors through [`LayerTensors`]
//! from a weights file ([`FromWeights`]) or seeded random values ([`Random`]).

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::NnError;
use crate::kind::LayerKind;
use crate::layers::{
    AvgPool, Conv, ConvGeometry, Dense, Depthwise, ElementWise, Flatten, Layer, LayerTensors, Op,
    Pointwise, Separable, Softmax, TensorSource,
};
use crate::limits::{at_most, ModelLimits};
use crate::shape::{Activation, FrameShape};
use crate::spec::{LayerSpec, ModelSpec};
use crate::weights::Weights;

/// Tensors from a weights file; remembers which were used.
pub(crate) struct FromWeights<'a> {
    pub(crate) weights: &'a Weights,
    pub(crate) used: Vec<String>,
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
pub(crate) struct Random(pub(crate) ChaCha8Rng);

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
    let (allowed, required) = ls.kind.fields();
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
    let two_d = ls.kind.two_d();
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
    )
    .with_two_d(two_d);
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
pub(crate) fn build_layers(
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
        let op: Op = match ls.kind {
            LayerKind::Conv1d | LayerKind::Conv2d => {
                let g = geometry(n, ls, shape)?;
                let co = positive(n, "out_channels", ls.out_channels.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(g.out_width, co))?;
                src.budget.state(n, g.history_frames(), shape.len())?;
                Conv::load(g, co, act, &mut LayerTensors::new(&mut *src, n))?.into()
            }
            LayerKind::Depthwise1d | LayerKind::Depthwise2d => {
                let g = geometry(n, ls, shape)?;
                src.budget.state(n, g.history_frames(), shape.len())?;
                Depthwise::load(g, act, &mut LayerTensors::new(&mut *src, n))?.into()
            }
            LayerKind::Pointwise => {
                let co = positive(n, "out_channels", ls.out_channels.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(shape.width, co))?;
                let groups = groups(n, ls, shape.channels, co)?;
                Pointwise::load(shape, co, groups, act, &mut LayerTensors::new(&mut *src, n))?
                    .into()
            }
            LayerKind::Separable1d | LayerKind::Separable2d => {
                let g = geometry(n, ls, shape)?;
                let co = positive(n, "out_channels", ls.out_channels.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(g.out_width, co))?;
                src.budget.state(n, g.history_frames(), shape.len())?;
                let groups = groups(n, ls, shape.channels, co)?;
                Separable::load(g, co, groups, act, &mut LayerTensors::new(&mut *src, n))?.into()
            }
            LayerKind::Relu => ElementWise::new(shape, Activation::Relu).into(),
            LayerKind::Relu6 => ElementWise::new(shape, Activation::Relu6).into(),
            LayerKind::Identity => ElementWise::new(shape, Activation::Identity).into(),
            LayerKind::Avgpool => {
                let frames = positive(n, "frames", ls.frames.unwrap_or(0))?;
                src.budget.state(n, frames - 1, shape.channels)?;
                AvgPool::new(shape, frames).into()
            }
            LayerKind::Dense => {
                let units = positive(n, "units", ls.units.unwrap_or(0))?;
                src.budget.frame(n, FrameShape::new(1, units))?;
                Dense::load(shape, units, act, &mut LayerTensors::new(&mut *src, n))?.into()
            }
            LayerKind::Softmax => Softmax::new(shape).into(),
            LayerKind::Flatten => Flatten::new(shape).into(),
        };
        let layer = Layer::new(name, ls.kind, op);
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

/// The channel groups of a pointwise layer or half (default 1), dividing both channel counts.
fn groups(name: &str, ls: &LayerSpec, c_in: usize, c_out: usize) -> Result<usize, NnError> {
    let groups = positive(name, "groups", ls.groups.unwrap_or(1))?;
    if !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
        return Err(NnError::InvalidLayer {
            layer: name.to_string(),
            reason: format!(
                "groups = {groups} must divide both the {c_in} input channels and the {c_out} \
                 output channels"
            ),
        });
    }
    Ok(groups)
}
