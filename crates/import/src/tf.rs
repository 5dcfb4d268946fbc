//! Frozen TensorFlow graphs (GraphDef .pb) to the op chain: NHWC with H the time axis, W the width, C the channels.
//!
//! The graph is walked back from its output (`labels_softmax`, or the one node nothing
//! consumes) along data inputs to the features: a `Placeholder` of static shape, or
//! `DecodeWav -> AudioSpectrogram -> Mfcc`, which becomes the spec's `[frontend]`.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use sepstream_nn::Activation;

use crate::error::ImportError;
use crate::lower::{ConvKind, Step};
use crate::tf_proto::{attr_value::Value, dtype_name, GraphDef, NodeDef, TensorProto};
use crate::tf_proto::{DT_FLOAT, DT_INT32, DT_INT64};
use crate::{centered_pad, FrontendSpec, Graph};

/// The ops this importer maps.
pub const SUPPORTED_OPS: &str = "Conv2D, DepthwiseConv2dNative, BiasAdd, Add, AddV2, Mul, \
FusedBatchNorm, FusedBatchNormV3, Relu, Relu6, AvgPool, Mean, MatMul, Reshape, Squeeze, Softmax, \
Identity (features from Placeholder or DecodeWav -> AudioSpectrogram -> Mfcc)";

/// A constant tensor of the graph.
struct Constant {
    shape: Vec<usize>,
    floats: Option<Vec<f32>>,
    ints: Option<Vec<i64>>,
    dtype: i32,
}

struct TfGraph<'a> {
    nodes: &'a [NodeDef],
    by_name: HashMap<&'a str, usize>,
}

/// `name:k` -> (`name`, k); `^name` (control inputs) are not data inputs.
fn split_input(input: &str) -> (&str, usize) {
    match input.rsplit_once(':') {
        Some((n, k)) if k.chars().all(|c| c.is_ascii_digit()) => (n, k.parse().unwrap_or(0)),
        _ => (input, 0),
    }
}

fn attr<'a>(node: &'a NodeDef, name: &str) -> Option<&'a Value> {
    node.attr.get(name).and_then(|a| a.value.as_ref())
}

fn attr_int(node: &NodeDef, name: &str) -> Option<i64> {
    match attr(node, name) {
        Some(Value::I(i)) => Some(*i),
        _ => None,
    }
}

fn attr_float(node: &NodeDef, name: &str) -> Option<f32> {
    match attr(node, name) {
        Some(Value::F(f)) => Some(*f),
        _ => None,
    }
}

fn attr_bool(node: &NodeDef, name: &str) -> Option<bool> {
    match attr(node, name) {
        Some(Value::B(b)) => Some(*b),
        _ => None,
    }
}

fn attr_str(node: &NodeDef, name: &str) -> Option<String> {
    match attr(node, name) {
        Some(Value::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

fn attr_ints(node: &NodeDef, name: &str) -> Option<Vec<i64>> {
    match attr(node, name) {
        Some(Value::List(l)) => Some(l.i.clone()),
        _ => None,
    }
}

fn bad_attr(
    node: &NodeDef,
    attr: &str,
    value: impl std::fmt::Debug,
    expected: &str,
) -> ImportError {
    ImportError::UnsupportedAttribute {
        node: node.name.clone(),
        op: node.op.clone(),
        attr: attr.to_string(),
        value: format!("{value:?}"),
        expected: expected.to_string(),
    }
}

fn unsupported(node: &NodeDef, reason: String) -> ImportError {
    ImportError::Unsupported {
        node: node.name.clone(),
        op: node.op.clone(),
        reason,
    }
}

fn decode_tensor(node: &NodeDef, t: &TensorProto) -> Result<Constant, ImportError> {
    let dims = t
        .tensor_shape
        .as_ref()
        .map(|s| s.dim.clone())
        .unwrap_or_default();
    let mut shape = Vec::with_capacity(dims.len());
    for d in &dims {
        if d.size < 0 {
            return Err(ImportError::DynamicShape {
                node: node.name.clone(),
                op: node.op.clone(),
                detail: "a constant with an unknown dimension".into(),
            });
        }
        shape.push(d.size as usize);
    }
    let n: usize = shape.iter().product();
    let splat = |v: Vec<f32>| {
        if v.len() == 1 && n > 1 {
            vec![v[0]; n]
        } else {
            v
        }
    };
    let mut c = Constant {
        shape,
        floats: None,
        ints: None,
        dtype: t.dtype,
    };
    match t.dtype {
        DT_FLOAT => {
            let v = if !t.tensor_content.is_empty() {
                t.tensor_content
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            } else {
                splat(t.float_val.clone())
            };
            if v.len() != n {
                return Err(unsupported(
                    node,
                    format!(
                        "a float constant of {} values for shape {:?}",
                        v.len(),
                        c.shape
                    ),
                ));
            }
            c.floats = Some(v);
        }
        DT_INT32 => {
            let v: Vec<i64> = if !t.tensor_content.is_empty() {
                t.tensor_content
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                    .collect()
            } else {
                t.int_val.iter().map(|&i| i as i64).collect()
            };
            c.ints = Some(v);
        }
        DT_INT64 => {
            let v: Vec<i64> = if !t.tensor_content.is_empty() {
                t.tensor_content
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect()
            } else {
                t.int64_val.clone()
            };
            c.ints = Some(v);
        }
        _ => {}
    }
    Ok(c)
}

/// A graph whose inputs lead back to `node` (a frozen graph is acyclic).
fn cycle(node: &NodeDef) -> ImportError {
    ImportError::Graph(format!(
        "the inputs of node {} ({}) lead back to it: the graph has a cycle",
        node.name, node.op
    ))
}

impl<'a> TfGraph<'a> {
    fn node(&self, name: &str) -> Result<&'a NodeDef, ImportError> {
        self.by_name
            .get(name)
            .map(|&i| &self.nodes[i])
            .ok_or_else(|| ImportError::Graph(format!("no node named `{name}`")))
    }

    /// The constant an input resolves to (through Identity nodes), if it is one.
    fn constant(&self, input: &str) -> Result<Option<(&'a NodeDef, Constant)>, ImportError> {
        let mut node = self.node(split_input(input).0)?;
        let mut hops = 0;
        while node.op == "Identity" && !node.input.is_empty() {
            hops += 1;
            if hops > self.nodes.len() {
                return Err(cycle(node));
            }
            node = self.node(split_input(&node.input[0]).0)?;
        }
        if node.op != "Const" {
            return Ok(None);
        }
        match attr(node, "value") {
            Some(Value::Tensor(t)) => Ok(Some((node, decode_tensor(node, t)?))),
            _ => Err(ImportError::Graph(format!(
                "Const node {} has no tensor value",
                node.name
            ))),
        }
    }

    fn data_inputs(&self, node: &'a NodeDef) -> Vec<&'a str> {
        node.input
            .iter()
            .filter(|i| !i.starts_with('^'))
            .map(String::as_str)
            .collect()
    }

    /// Input `k` of `node`, which must be a constant: its name and value.
    fn constant_input(
        &self,
        node: &'a NodeDef,
        k: usize,
        expected: &str,
    ) -> Result<(&'a str, Constant), ImportError> {
        let inputs = self.data_inputs(node);
        let Some(&input) = inputs.get(k) else {
            return Err(unsupported(
                node,
                format!("input {k} is missing; expected {expected}"),
            ));
        };
        match self.constant(input)? {
            None => Err(ImportError::NotConstant {
                node: node.name.clone(),
                op: node.op.clone(),
                input: input.to_string(),
                expected: expected.to_string(),
            }),
            Some((_, c)) => Ok((input, c)),
        }
    }

    /// The float constant input `k` of `node` (an error naming the node if it is not one).
    fn float_input(
        &self,
        node: &'a NodeDef,
        k: usize,
        expected: &str,
    ) -> Result<Constant, ImportError> {
        let (input, c) = self.constant_input(node, k, expected)?;
        if c.floats.is_none() {
            return Err(ImportError::NonFloatTensor {
                node: node.name.clone(),
                op: node.op.clone(),
                tensor: input.to_string(),
                dtype: dtype_name(c.dtype),
                expected: format!("DT_FLOAT ({expected})"),
            });
        }
        Ok(c)
    }

    fn int_input(
        &self,
        node: &'a NodeDef,
        k: usize,
        expected: &str,
    ) -> Result<Vec<i64>, ImportError> {
        let (input, c) = self.constant_input(node, k, expected)?;
        c.ints.ok_or_else(|| ImportError::NonFloatTensor {
            node: node.name.clone(),
            op: node.op.clone(),
            tensor: input.to_string(),
            dtype: dtype_name(c.dtype),
            expected: format!("DT_INT32 or DT_INT64 ({expected})"),
        })
    }

    /// The one input of `node` that is not a constant.
    fn data_input(&self, node: &'a NodeDef) -> Result<&'a str, ImportError> {
        let mut live = Vec::new();
        for i in self.data_inputs(node) {
            if self.constant(i)?.is_none() {
                live.push(i);
            }
        }
        match live.as_slice() {
            [one] => Ok(one),
            [] => Err(ImportError::Graph(format!(
                "node {} ({}) has only constant inputs",
                node.name, node.op
            ))),
            [first, second, ..] => {
                let expected = match node.op.as_str() {
                    "Conv2D" | "DepthwiseConv2dNative" | "MatMul" => "constant weights",
                    "BiasAdd" | "Add" | "AddV2" | "Mul" => "a constant per-channel operand",
                    "FusedBatchNorm" | "FusedBatchNormV3" => "constant batch-norm statistics",
                    _ => "one data input",
                };
                // The first input is the data for every op here; the other is what must be constant.
                let (_, other) = if node.input.first().map(String::as_str) == Some(*first) {
                    (first, second)
                } else {
                    (second, first)
                };
                Err(ImportError::NotConstant {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    input: other.to_string(),
                    expected: expected.to_string(),
                })
            }
        }
    }
}

/// Output size and the pad before, of TensorFlow's 'SAME' padding along one axis.
fn tf_same(len: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = len.div_ceil(s);
    let span = (k - 1) * d + 1;
    let total = ((out - 1) * s + span).saturating_sub(len);
    (out, total / 2)
}

/// Reads a frozen graph and lowers it to the op chain.
pub(crate) fn lower(
    bytes: &[u8],
    path: &Path,
    sample_rate: u32,
    output: Option<&str>,
) -> Result<Graph, ImportError> {
    let gd = GraphDef::decode(bytes).map_err(|e| ImportError::Decode {
        path: path.to_path_buf(),
        format: "TensorFlow GraphDef",
        message: e.to_string(),
    })?;
    if gd.node.is_empty() {
        return Err(ImportError::Decode {
            path: path.to_path_buf(),
            format: "TensorFlow GraphDef",
            message: "the graph has no nodes".into(),
        });
    }
    let by_name = gd
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let g = TfGraph {
        nodes: &gd.node,
        by_name,
    };
    let out = match output {
        Some(o) => g.node(o)?,
        None => find_output(&g)?,
    };
    // Back from the output to the features.
    let mut chain: Vec<&NodeDef> = Vec::new();
    let mut cur = out;
    let (mut shape, frontend) = loop {
        match cur.op.as_str() {
            "Mfcc" => break mfcc_frontend(&g, cur, sample_rate)?,
            "Placeholder" => {
                let dims = match attr(cur, "shape") {
                    Some(Value::Shape(s)) if !s.unknown_rank => {
                        s.dim.iter().map(|d| d.size).collect::<Vec<_>>()
                    }
                    _ => {
                        return Err(ImportError::DynamicShape {
                            node: cur.name.clone(),
                            op: cur.op.clone(),
                            detail: "the input has no static shape".into(),
                        })
                    }
                };
                let mut shape = Vec::new();
                for (i, &d) in dims.iter().enumerate() {
                    match d {
                        d if d > 0 => shape.push(d as usize),
                        -1 if i == 0 => shape.push(1),
                        _ => {
                            return Err(ImportError::DynamicShape {
                                node: cur.name.clone(),
                                op: cur.op.clone(),
                                detail: format!(
                                    "input dimension {i} is {d}, expected a fixed size"
                                ),
                            })
                        }
                    }
                }
                break (shape, None);
            }
            _ => {
                if chain.len() >= g.nodes.len() {
                    return Err(cycle(cur));
                }
                chain.push(cur);
                cur = g.node(split_input(g.data_input(cur)?).0)?;
            }
        }
    };
    chain.reverse();
    let mut steps = Vec::new();
    let mut input = None;
    // The window length in frames the graph sees (the time axis before the first layer).
    let mut window_frames = None;
    for node in chain {
        lower_node(
            &g,
            node,
            &mut shape,
            &mut steps,
            &mut input,
            &mut window_frames,
        )?;
    }
    let (width, channels) = input.ok_or_else(|| {
        ImportError::Graph(
            "no convolution or fully connected layer between the features and the output".into(),
        )
    })?;
    Ok(Graph {
        steps,
        width,
        channels,
        window_frames: window_frames.unwrap_or(1),
        frontend,
        time_axis: "H axis (NHWC axis 1)",
    })
}

fn find_output<'a>(g: &TfGraph<'a>) -> Result<&'a NodeDef, ImportError> {
    if let Ok(n) = g.node("labels_softmax") {
        return Ok(n);
    }
    let consumed: std::collections::HashSet<&str> = g
        .nodes
        .iter()
        .flat_map(|n| {
            n.input
                .iter()
                .map(|i| split_input(i.trim_start_matches('^')).0)
        })
        .collect();
    let sinks: Vec<&NodeDef> = g
        .nodes
        .iter()
        .filter(|n| {
            !consumed.contains(n.name.as_str())
                && !matches!(n.op.as_str(), "Const" | "NoOp" | "Placeholder")
        })
        .collect();
    match sinks.as_slice() {
        [one] => Ok(one),
        _ => Err(ImportError::Graph(format!(
            "cannot tell the output: {} nodes have no consumer ({}); name one with --output",
            sinks.len(),
            sinks
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `DecodeWav -> AudioSpectrogram -> Mfcc` as a `[frontend]`; returns the Mfcc output shape
/// `[1, frames, n_mfcc]`.
fn mfcc_frontend<'a>(
    g: &TfGraph<'a>,
    mfcc: &'a NodeDef,
    sample_rate: u32,
) -> Result<(Vec<usize>, Option<FrontendSpec>), ImportError> {
    let inputs = g.data_inputs(mfcc);
    let spec_node = g.node(split_input(inputs.first().copied().unwrap_or("")).0)?;
    if spec_node.op != "AudioSpectrogram" {
        return Err(ImportError::UnsupportedOp {
            node: spec_node.name.clone(),
            op: spec_node.op.clone(),
            expected: "AudioSpectrogram as the input of Mfcc".into(),
        });
    }
    let window = attr_int(spec_node, "window_size").ok_or_else(|| {
        bad_attr(
            spec_node,
            "window_size",
            "missing",
            "a window length in samples",
        )
    })?;
    let stride = attr_int(spec_node, "stride")
        .ok_or_else(|| bad_attr(spec_node, "stride", "missing", "a hop in samples"))?;
    if attr_bool(spec_node, "magnitude_squared") != Some(true) {
        return Err(bad_attr(
            spec_node,
            "magnitude_squared",
            attr_bool(spec_node, "magnitude_squared").unwrap_or(false),
            "true (Mfcc then weighs the magnitude |X|)",
        ));
    }
    let decode = g.node(split_input(g.data_inputs(spec_node).first().copied().unwrap_or("")).0)?;
    if decode.op != "DecodeWav" {
        return Err(ImportError::UnsupportedOp {
            node: decode.name.clone(),
            op: decode.op.clone(),
            expected: "DecodeWav as the input of AudioSpectrogram".into(),
        });
    }
    let samples = match attr_int(decode, "desired_samples") {
        Some(n) if n > 0 => n as usize,
        other => {
            return Err(ImportError::DynamicShape {
                node: decode.name.clone(),
                op: decode.op.clone(),
                detail: format!(
                    "desired_samples = {other:?}: the clip length, hence the window the model \
                     sees, is not fixed"
                ),
            })
        }
    };
    if let Some(c) = attr_int(decode, "desired_channels").filter(|&c| c != 1) {
        return Err(bad_attr(decode, "desired_channels", c, "1 (mono)"));
    }
    let channels = attr_int(mfcc, "filterbank_channel_count").unwrap_or(40);
    let n_mfcc = attr_int(mfcc, "dct_coefficient_count").unwrap_or(13);
    let f_min = attr_float(mfcc, "lower_frequency_limit").unwrap_or(20.0);
    let f_max = attr_float(mfcc, "upper_frequency_limit").unwrap_or(4000.0);
    let (window, hop) = (window as usize, stride as usize);
    if window == 0 || hop == 0 || samples < window {
        return Err(bad_attr(
            spec_node,
            "window_size",
            window,
            "1..=desired_samples",
        ));
    }
    let frames = (samples - window) / hop + 1;
    let fe = FrontendSpec {
        sample_rate,
        window,
        hop,
        n_fft: window.next_power_of_two(),
        n_mels: channels as usize,
        f_min,
        f_max,
        n_mfcc: n_mfcc as usize,
        window_seconds: samples as f64 / sample_rate as f64,
    };
    Ok((vec![1, frames, n_mfcc as usize], Some(fe)))
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A reshape or squeeze: allowed before the first layer (memory order is `[t][w][c]` either
/// way) and once time is pooled away (a frame is then one `[w][c]` vector).
fn reshape(
    node: &NodeDef,
    shape: &mut Vec<usize>,
    new: Vec<usize>,
    started: bool,
) -> Result<(), ImportError> {
    let time_pooled = shape.len() < 4 || shape[1] == 1;
    if started && !time_pooled {
        return Err(unsupported(
            node,
            format!(
                "a reshape from {shape:?} to {new:?} while the time axis still has {} frames: \
                 only the features before the first layer and pooled frames may be reshaped",
                shape[1]
            ),
        ));
    }
    *shape = new;
    Ok(())
}

fn lower_node<'a>(
    g: &TfGraph<'a>,
    node: &'a NodeDef,
    shape: &mut Vec<usize>,
    steps: &mut Vec<Step>,
    input: &mut Option<(usize, usize)>,
    window_frames: &mut Option<usize>,
) -> Result<(), ImportError> {
    let started = input.is_some();
    let channels = *shape.last().unwrap_or(&1);
    match node.op.as_str() {
        "Identity" | "StopGradient" => {}
        "Reshape" => {
            let target = g.int_input(node, 1, "a constant target shape")?;
            let total = numel(shape);
            let known: i64 = target.iter().filter(|&&d| d != -1).product();
            let mut new = Vec::new();
            for &d in &target {
                match d {
                    -1 if known > 0 && total as i64 % known == 0 => {
                        new.push((total as i64 / known) as usize)
                    }
                    d if d > 0 => new.push(d as usize),
                    _ => {
                        return Err(ImportError::DynamicShape {
                            node: node.name.clone(),
                            op: node.op.clone(),
                            detail: format!("target shape {target:?} for {total} values"),
                        })
                    }
                }
            }
            if numel(&new) != total {
                return Err(ImportError::DynamicShape {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    detail: format!("target shape {target:?} for {total} values"),
                });
            }
            reshape(node, shape, new, started)?;
        }
        "Squeeze" => {
            let dims = attr_ints(node, "squeeze_dims").unwrap_or_default();
            let new: Vec<usize> = shape
                .iter()
                .enumerate()
                .filter(|&(i, &d)| !(d == 1 && (dims.is_empty() || dims.contains(&(i as i64)))))
                .map(|(_, &d)| d)
                .collect();
            reshape(node, shape, new, started)?;
        }
        "Conv2D" | "DepthwiseConv2dNative" => {
            if let Some(f) = attr_str(node, "data_format").filter(|f| f != "NHWC") {
                return Err(bad_attr(node, "data_format", f, "\"NHWC\""));
            }
            if shape.len() != 4 || shape[0] != 1 {
                return Err(unsupported(
                    node,
                    format!("input of shape {shape:?}, expected [1, time, width, channels]"),
                ));
            }
            let (t, w, ci) = (shape[1], shape[2], shape[3]);
            if input.is_none() {
                *input = Some((w, ci));
                *window_frames = Some(t);
            }
            let f = g.float_input(node, 1, "constant filter weights")?;
            if f.shape.len() != 4 || f.shape[2] != ci {
                return Err(unsupported(node, format!("filter of shape {:?} for {ci} input channels, expected [k_t, k_w, {ci}, C_out]", f.shape)));
            }
            let (kt, kw, co) = (f.shape[0], f.shape[1], f.shape[3]);
            let strides = attr_ints(node, "strides").unwrap_or(vec![1, 1, 1, 1]);
            if strides.len() != 4
                || strides[0] != 1
                || strides[3] != 1
                || strides[1] < 1
                || strides[2] < 1
            {
                return Err(bad_attr(node, "strides", strides, "[1, s_t, s_w, 1]"));
            }
            let dil = attr_ints(node, "dilations").unwrap_or(vec![1, 1, 1, 1]);
            if dil.len() != 4 || dil[0] != 1 || dil[2] != 1 || dil[3] != 1 || dil[1] < 1 {
                return Err(bad_attr(
                    node,
                    "dilations",
                    dil,
                    "[1, d, 1, 1] (dilation in time only)",
                ));
            }
            let (st, sw, d) = (strides[1] as usize, strides[2] as usize, dil[1] as usize);
            let padding = attr_str(node, "padding").unwrap_or_default();
            if padding != "SAME" && !(padding == "VALID" && kt == 1 && kw == 1) {
                return Err(bad_attr(
                    node,
                    "padding",
                    padding,
                    "\"SAME\" (or \"VALID\" for 1x1 kernels)",
                ));
            }
            let (t_out, pad_t) = tf_same(t, kt, st, d);
            let (w_out, pad_w) = tf_same(w, kw, sw, 1);
            centered_pad(node.name.as_str(), node.op.as_str(), pad_t, kt, d, t)?;
            let raw = f.floats.expect("float constant");
            let (kind, weight, out_c) = if node.op == "Conv2D" {
                // HWIO -> [C_out][C_in][k_t][k_w]
                let mut wt = vec![0.0; raw.len()];
                for y in 0..kt {
                    for x in 0..kw {
                        for i in 0..ci {
                            for o in 0..co {
                                wt[((o * ci + i) * kt + y) * kw + x] =
                                    raw[((y * kw + x) * ci + i) * co + o];
                            }
                        }
                    }
                }
                let kind = if kt == 1 && kw == 1 && st == 1 && sw == 1 {
                    ConvKind::Pointwise
                } else {
                    ConvKind::Standard
                };
                (kind, wt, co)
            } else {
                if co != 1 {
                    return Err(unsupported(
                        node,
                        format!("channel multiplier {co}, expected 1"),
                    ));
                }
                // [k_t, k_w, C, 1] -> [C][k_t][k_w]
                let mut wt = vec![0.0; raw.len()];
                for y in 0..kt {
                    for x in 0..kw {
                        for c in 0..ci {
                            wt[(c * kt + y) * kw + x] = raw[(y * kw + x) * ci + c];
                        }
                    }
                }
                (ConvKind::Depthwise, wt, ci)
            };
            steps.push(Step::Conv {
                node: node.name.clone(),
                kind,
                weight,
                out_channels: out_c,
                kernel: (kt, kw),
                stride: (st, sw),
                dilation: d,
                centered: true,
                pad_left: pad_w,
            });
            *shape = vec![1, t_out, w_out, out_c];
        }
        "BiasAdd" | "Add" | "AddV2" | "Mul" => {
            g.data_input(node)?;
            let which = g
                .data_inputs(node)
                .iter()
                .position(|i| g.constant(i).ok().flatten().is_some())
                .unwrap_or(1);
            let c = g.float_input(node, which, "a constant per-channel operand")?;
            let v = c.floats.expect("float constant");
            let v = if v.len() == 1 {
                vec![v[0]; channels]
            } else {
                v
            };
            if v.len() != channels || c.shape.iter().rev().skip(1).any(|&d| d != 1) {
                return Err(unsupported(node, format!("a constant of shape {:?}, expected one value per channel ({channels}) or a scalar", c.shape)));
            }
            steps.push(if node.op == "Mul" {
                Step::Affine {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    scale: Some(v),
                    shift: vec![0.0; channels],
                }
            } else {
                Step::Affine {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    scale: None,
                    shift: v,
                }
            });
        }
        "FusedBatchNorm" | "FusedBatchNormV3" => {
            if attr_bool(node, "is_training") == Some(true) {
                return Err(bad_attr(
                    node,
                    "is_training",
                    true,
                    "false (a frozen inference graph)",
                ));
            }
            if let Some(f) = attr_str(node, "data_format").filter(|f| f != "NHWC") {
                return Err(bad_attr(node, "data_format", f, "\"NHWC\""));
            }
            let eps = attr_float(node, "epsilon").unwrap_or(1e-4);
            let gamma = g.float_input(node, 1, "a constant scale")?.floats.unwrap();
            let beta = g.float_input(node, 2, "a constant offset")?.floats.unwrap();
            let mean = g
                .float_input(node, 3, "a constant moving mean")?
                .floats
                .unwrap();
            let var = g
                .float_input(node, 4, "a constant moving variance")?
                .floats
                .unwrap();
            if [&gamma, &beta, &mean, &var]
                .iter()
                .any(|v| v.len() != channels)
            {
                return Err(unsupported(
                    node,
                    format!("batch-norm statistics are not {channels} values each"),
                ));
            }
            steps.push(crate::lower::batch_norm(
                node.name.clone(),
                node.op.clone(),
                (&gamma, &beta, &mean, &var),
                eps,
            ));
        }
        "Relu" => steps.push(Step::Activation(Activation::Relu)),
        "Relu6" => steps.push(Step::Activation(Activation::Relu6)),
        "AvgPool" | "Mean" => {
            if shape.len() != 4 {
                return Err(unsupported(
                    node,
                    format!("input of shape {shape:?}, expected [1, time, width, channels]"),
                ));
            }
            let (t, w) = (shape[1], shape[2]);
            if node.op == "AvgPool" {
                let k = attr_ints(node, "ksize").unwrap_or_default();
                if k.len() != 4
                    || k[0] != 1
                    || k[3] != 1
                    || k[1] as usize != t
                    || k[2] as usize != w
                {
                    return Err(bad_attr(
                        node,
                        "ksize",
                        k,
                        &format!("[1, {t}, {w}, 1] (a mean over the whole window and width)"),
                    ));
                }
                let padding = attr_str(node, "padding").unwrap_or_default();
                if padding != "VALID" {
                    return Err(bad_attr(node, "padding", padding, "\"VALID\""));
                }
                *shape = vec![1, 1, 1, channels];
            } else {
                let mut axes = g.int_input(node, 1, "constant reduction axes")?;
                axes.sort_unstable();
                if axes != [1, 2] {
                    return Err(unsupported(
                        node,
                        format!("a mean over axes {axes:?}, expected [1, 2] (time and width)"),
                    ));
                }
                *shape = if attr_bool(node, "keep_dims") == Some(true) {
                    vec![1, 1, 1, channels]
                } else {
                    vec![1, channels]
                };
            }
            steps.push(Step::AvgPool { frames: t });
        }
        "MatMul" => {
            if attr_bool(node, "transpose_a") == Some(true) {
                return Err(bad_attr(node, "transpose_a", true, "false"));
            }
            if shape.len() != 2 || shape[0] != 1 {
                return Err(unsupported(
                    node,
                    format!(
                        "input of shape {shape:?}, expected [1, features] (pool over time first)"
                    ),
                ));
            }
            let k = shape[1];
            let wc = g.float_input(node, 1, "constant weights")?;
            let tb = attr_bool(node, "transpose_b") == Some(true);
            let (rows, cols) = (
                wc.shape.first().copied().unwrap_or(0),
                wc.shape.get(1).copied().unwrap_or(0),
            );
            let (inputs, units) = if tb { (cols, rows) } else { (rows, cols) };
            if wc.shape.len() != 2 || inputs != k {
                return Err(unsupported(
                    node,
                    format!("weights of shape {:?} for {k} inputs", wc.shape),
                ));
            }
            let raw = wc.floats.unwrap();
            let weight = if tb {
                raw
            } else {
                let mut t = vec![0.0; raw.len()];
                for i in 0..inputs {
                    for u in 0..units {
                        t[u * inputs + i] = raw[i * units + u];
                    }
                }
                t
            };
            if input.is_none() {
                *input = Some((1, k));
            }
            steps.push(Step::Dense {
                node: node.name.clone(),
                weight,
                units,
            });
            *shape = vec![1, units];
        }
        "Softmax" => steps.push(Step::Softmax),
        other => {
            return Err(ImportError::UnsupportedOp {
                node: node.name.clone(),
                op: other.to_string(),
                expected: SUPPORTED_OPS.to_string(),
            })
        }
    }
    Ok(())
}
