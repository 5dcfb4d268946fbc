//! The layout-neutral chain of ops both importers produce, and its folding into a sepstream spec + weights.
//!
//! Shapes here are (time, width, channels), the engine's own axes: each importer has already
//! said which of its axes is time. Affine ops right after a convolution or a dense layer
//! (bias, batch norm, multiplication by constants) are folded into its weights; an activation
//! right after becomes the layer's activation; a depthwise layer followed by a pointwise one
//! with the same activation becomes one fused `separable2d` layer.

use sepstream_nn::LayerKind;
use sepstream_nn::{Activation, LayerSpec, Size2, Weights};

use crate::error::ImportError;

/// Which convolution a graph node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    Standard,
    Depthwise,
    Pointwise,
}

/// Batch normalisation `(x - mean) / sqrt(var + eps) * gamma + beta` as an [`Step::Affine`].
pub fn batch_norm(
    node: String,
    op: String,
    (gamma, beta, mean, var): (&[f32], &[f32], &[f32], &[f32]),
    eps: f32,
) -> Step {
    let scale: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    Step::Affine {
        node,
        op,
        scale: Some(scale),
        shift,
    }
}

/// One op of the chain, with the graph node it came from.
#[derive(Clone, Debug)]
pub enum Step {
    /// `weight` is [C_out][C_in][k_t][k_w] (standard), [C][k_t][k_w] (depthwise) or
    /// [C_out][C_in] (pointwise).
    Conv {
        node: String,
        kind: ConvKind,
        weight: Vec<f32>,
        out_channels: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: usize,
        /// Zero padding in time on both sides (a centred kernel), not causal.
        centered: bool,
        pad_left: usize,
    },
    /// Per-channel `x * scale + shift` (bias, batch norm, Mul/Add by constants).
    Affine {
        node: String,
        op: String,
        scale: Option<Vec<f32>>,
        shift: Vec<f32>,
    },
    Activation(Activation),
    /// Mean over the width and the last `frames` frames.
    AvgPool {
        frames: usize,
    },
    /// `weight` is [units][inputs], inputs in `[w][c]` order.
    Dense {
        node: String,
        weight: Vec<f32>,
        units: usize,
    },
    Softmax,
}

/// A layer being assembled: its spec, tensors, and whether it can still take an affine op.
struct Pending {
    spec: LayerSpec,
    /// (weight name, shape, values), bias last.
    weight: (Vec<usize>, Vec<f32>),
    bias: Vec<f32>,
    /// Output channels (rows of the weight).
    rows: usize,
    foldable: bool,
}

/// A short, unique layer name from a graph node name: the scope without the op name, with
/// `/` and other punctuation as `_` (`MobileNet/conv_1/Conv2D` -> `MobileNet_conv_1`).
fn layer_name(node: &str, taken: &[String]) -> String {
    let scope = node.rsplit_once('/').map_or(node, |(s, _)| s);
    let mut base: String = scope
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if base.is_empty() {
        base = "layer".into();
    }
    let mut name = base.clone();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    name
}

/// Drops the scope every layer name shares (`MobileNet_conv_1`, `MobileNet_fc1` -> `conv_1`, `fc1`).
fn strip_common_prefix(names: &mut [String]) {
    if names.len() < 2 {
        return;
    }
    let first = names[0].clone();
    let mut cut = 0;
    for (i, _) in first.match_indices('_') {
        let prefix = &first[..=i];
        if names
            .iter()
            .all(|n| n.starts_with(prefix) && n.len() > prefix.len())
        {
            cut = i + 1;
        } else {
            break;
        }
    }
    if cut > 0 {
        for n in names.iter_mut() {
            *n = n[cut..].to_string();
        }
    }
}

/// Folds the chain into layer specs and weights (tensor names follow the layer names).
pub fn to_layers(steps: Vec<Step>) -> Result<(Vec<LayerSpec>, Weights), ImportError> {
    let mut done: Vec<Pending> = Vec::new();
    for step in steps {
        // A layer whose weights are empty (a zero channel count or kernel size) cannot be
        // built, and nothing could be folded into it.
        if let Step::Conv { node, weight, .. } | Step::Dense { node, weight, .. } = &step {
            if weight.is_empty() {
                return Err(ImportError::Graph(format!(
                    "node {node}: its weights have no values (a size of 0)"
                )));
            }
        }
        match step {
            Step::Conv {
                node,
                kind,
                weight,
                out_channels,
                kernel,
                stride,
                dilation,
                centered,
                pad_left,
            } => {
                let taken: Vec<String> = done.iter().filter_map(|p| p.spec.name.clone()).collect();
                let name = layer_name(&node, &taken);
                let (spec, shape) = match kind {
                    ConvKind::Pointwise => {
                        let ci = weight.len() / out_channels;
                        (
                            LayerSpec::new(LayerKind::Pointwise).out_channels(out_channels),
                            vec![out_channels, ci],
                        )
                    }
                    ConvKind::Standard | ConvKind::Depthwise => {
                        let mut s = if kind == ConvKind::Standard {
                            LayerSpec::new(LayerKind::Conv2d).out_channels(out_channels)
                        } else {
                            LayerSpec::new(LayerKind::Depthwise2d)
                        };
                        s = s.kernel(Size2::Two([kernel.0, kernel.1]));
                        if stride != (1, 1) {
                            s = s.stride(Size2::Two([stride.0, stride.1]));
                        }
                        if dilation != 1 {
                            s = s.dilation(dilation);
                        }
                        if centered && kernel.0 > 1 {
                            s = s.centered(true);
                        }
                        if pad_left != (kernel.1 - 1) / 2 {
                            s = s.pad_left(pad_left);
                        }
                        let shape = if kind == ConvKind::Standard {
                            let ci = weight.len() / (out_channels * kernel.0 * kernel.1);
                            vec![out_channels, ci, kernel.0, kernel.1]
                        } else {
                            vec![out_channels, kernel.0, kernel.1]
                        };
                        (s, shape)
                    }
                };
                done.push(Pending {
                    spec: spec.named(&name),
                    weight: (shape, weight),
                    bias: vec![0.0; out_channels],
                    rows: out_channels,
                    foldable: true,
                });
            }
            Step::Dense {
                node,
                weight,
                units,
            } => {
                let taken: Vec<String> = done.iter().filter_map(|p| p.spec.name.clone()).collect();
                let name = layer_name(&node, &taken);
                let inputs = weight.len() / units;
                done.push(Pending {
                    spec: LayerSpec::new(LayerKind::Dense).units(units).named(&name),
                    weight: (vec![units, inputs], weight),
                    bias: vec![0.0; units],
                    rows: units,
                    foldable: true,
                });
            }
            Step::Affine {
                node,
                op,
                scale,
                shift,
            } => {
                let Some(p) = done.last_mut().filter(|p| p.foldable) else {
                    return Err(ImportError::Unsupported {
                        node,
                        op,
                        reason: "a per-channel scale or shift must follow a convolution or \
                                 a fully connected layer directly (it is folded into its \
                                 weights)"
                            .into(),
                    });
                };
                if shift.len() != p.rows || scale.as_ref().is_some_and(|s| s.len() != p.rows) {
                    return Err(ImportError::Unsupported {
                        node,
                        op,
                        reason: format!(
                            "{} values for a layer of {} channels",
                            shift.len(),
                            p.rows
                        ),
                    });
                }
                if let Some(scale) = &scale {
                    let per_row = p.weight.1.len() / p.rows;
                    for (row, s) in p.weight.1.chunks_exact_mut(per_row).zip(scale) {
                        row.iter_mut().for_each(|w| *w *= s);
                    }
                    for (b, s) in p.bias.iter_mut().zip(scale) {
                        *b *= s;
                    }
                }
                for (b, s) in p.bias.iter_mut().zip(&shift) {
                    *b += s;
                }
            }
            Step::Activation(a) => {
                let kind = match a {
                    Activation::Relu => LayerKind::Relu,
                    Activation::Relu6 => LayerKind::Relu6,
                    Activation::Identity => continue,
                };
                match done.last_mut() {
                    Some(p) if p.foldable && p.spec.activation.is_none() => {
                        p.spec.activation = Some(a);
                        p.foldable = false;
                    }
                    _ => done.push(stateless(LayerSpec::new(kind), &done)),
                }
            }
            Step::AvgPool { frames } => {
                done.push(stateless(
                    LayerSpec::new(LayerKind::Avgpool).frames(frames),
                    &done,
                ));
            }
            Step::Softmax => done.push(stateless(LayerSpec::new(LayerKind::Softmax), &done)),
        }
    }
    fuse_separable(&mut done);
    let mut names: Vec<String> = done.iter().map(|p| p.spec.name.clone().unwrap()).collect();
    let weighted: Vec<usize> = (0..done.len()).filter(|&i| done[i].rows > 0).collect();
    let mut short: Vec<String> = weighted.iter().map(|&i| names[i].clone()).collect();
    strip_common_prefix(&mut short);
    for (&i, n) in weighted.iter().zip(short) {
        names[i] = n;
    }
    let mut layers = Vec::new();
    let mut weights = Weights::default();
    for (mut p, name) in done.into_iter().zip(names) {
        p.spec.name = Some(name.clone());
        if p.rows > 0 {
            if p.spec.kind == LayerKind::Separable2d {
                let (dw, pw) = split_separable(&p);
                weights.insert(format!("{name}.depthwise.weight"), dw.0, dw.1);
                weights.insert(format!("{name}.depthwise.bias"), vec![dw.2.len()], dw.2);
                weights.insert(format!("{name}.pointwise.weight"), pw.0, pw.1);
                weights.insert(format!("{name}.pointwise.bias"), vec![pw.2.len()], pw.2);
            } else {
                weights.insert(format!("{name}.weight"), p.weight.0, p.weight.1);
                weights.insert(format!("{name}.bias"), vec![p.rows], p.bias);
            }
        }
        layers.push(p.spec);
    }
    Ok((layers, weights))
}

/// A layer without weights, named by its kind (and its position if the kind repeats).
fn stateless(spec: LayerSpec, done: &[Pending]) -> Pending {
    let taken = |n: &str| done.iter().any(|p| p.spec.name.as_deref() == Some(n));
    let name = if taken(spec.kind.name()) {
        format!("{}{}", spec.kind, done.len())
    } else {
        spec.kind.to_string()
    };
    Pending {
        spec: spec.named(&name),
        weight: (vec![], vec![]),
        bias: vec![],
        rows: 0,
        foldable: false,
    }
}

/// The depthwise half of a fused separable layer is kept in `weight`/`bias` of the pending
/// layer under `SEP_DW`; see [`fuse_separable`].
type Half = (Vec<usize>, Vec<f32>, Vec<f32>);

fn split_separable(p: &Pending) -> (Half, Half) {
    // The fused pending layer stores depthwise weight ++ pointwise weight, and depthwise
    // bias ++ pointwise bias; the depthwise shape is the first tensor shape.
    let dw_shape = p.weight.0.clone();
    let dw_len: usize = dw_shape.iter().product();
    let c = dw_shape[0];
    let pw_w = p.weight.1[dw_len..].to_vec();
    let pw_rows = p.rows;
    let dw = (
        dw_shape,
        p.weight.1[..dw_len].to_vec(),
        p.bias[..c].to_vec(),
    );
    let pw = (
        vec![pw_rows, pw_w.len() / pw_rows],
        pw_w,
        p.bias[c..].to_vec(),
    );
    (dw, pw)
}

/// depthwise2d + pointwise with one activation -> separable2d (same arithmetic, fused).
fn fuse_separable(done: &mut Vec<Pending>) {
    let mut i = 0;
    while i + 1 < done.len() {
        let (a, b) = (&done[i], &done[i + 1]);
        let fusable = a.spec.kind == LayerKind::Depthwise2d
            && b.spec.kind == LayerKind::Pointwise
            && a.spec.activation == b.spec.activation
            && b.spec.groups.is_none();
        if !fusable {
            i += 1;
            continue;
        }
        let b = done.remove(i + 1);
        let a = &mut done[i];
        let name = a
            .spec
            .name
            .clone()
            .unwrap()
            .trim_end_matches("_depthwise_conv")
            .trim_end_matches("_depthwise")
            .to_string();
        let mut spec = a.spec.clone();
        spec.kind = LayerKind::Separable2d;
        spec.out_channels = b.spec.out_channels;
        spec.name = Some(name);
        a.spec = spec;
        a.weight.1.extend_from_slice(&b.weight.1);
        a.bias.extend_from_slice(&b.bias);
        a.rows = b.rows;
        i += 1;
    }
}
