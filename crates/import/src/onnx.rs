//! ONNX files to the op chain: NCHW with H the time axis, W the width, C the channels.
//!
//! The graph must be one chain from its single input, `[1, C, T, W]` with every dimension
//! fixed (T is the window the model was made for), to its output; nodes are read in the
//! (topological) order of the file.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use sepstream_nn::Activation;

use crate::centered_pad;
use crate::error::ImportError;
use crate::lower::{ConvKind, Step};
use crate::onnx_proto::{data_type_name, ModelProto, NodeProto, TensorProto, FLOAT, INT32, INT64};
use crate::Graph;

/// The ops this importer maps.
pub const SUPPORTED_OPS: &str = "Conv (standard, group == C depthwise, 1x1 pointwise), \
BatchNormalization, Add, Mul, Relu, Clip(0, 6), GlobalAveragePool, AveragePool and ReduceMean \
over time and width, Flatten, Reshape, Squeeze, Gemm, MatMul, Softmax, Identity, Dropout";

struct Constant {
    dims: Vec<usize>,
    floats: Option<Vec<f32>>,
    ints: Option<Vec<i64>>,
    data_type: i32,
}

fn decode(t: &TensorProto) -> Constant {
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let mut c = Constant {
        dims,
        floats: None,
        ints: None,
        data_type: t.data_type,
    };
    match t.data_type {
        FLOAT => {
            c.floats = Some(if t.raw_data.is_empty() {
                t.float_data.clone()
            } else {
                t.raw_data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
        }
        INT64 => {
            c.ints = Some(if t.raw_data.is_empty() {
                t.int64_data.clone()
            } else {
                t.raw_data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect()
            })
        }
        INT32 => {
            c.ints = Some(if t.raw_data.is_empty() {
                t.int32_data.iter().map(|&i| i as i64).collect()
            } else {
                t.raw_data
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                    .collect()
            })
        }
        _ => {}
    }
    c
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a crate::onnx_proto::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_int(n: &NodeProto, name: &str) -> Option<i64> {
    attr(n, name).map(|a| a.i)
}

fn node_name(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name.clone()
    }
}

fn unsupported(n: &NodeProto, reason: String) -> ImportError {
    ImportError::Unsupported {
        node: node_name(n),
        op: n.op_type.clone(),
        reason,
    }
}

fn bad_attr(n: &NodeProto, a: &str, value: impl std::fmt::Debug, expected: &str) -> ImportError {
    ImportError::UnsupportedAttribute {
        node: node_name(n),
        op: n.op_type.clone(),
        attr: a.to_string(),
        value: format!("{value:?}"),
        expected: expected.to_string(),
    }
}

struct Consts(HashMap<String, Constant>);

impl Consts {
    fn floats(
        &self,
        n: &NodeProto,
        k: usize,
        expected: &str,
    ) -> Result<(Vec<usize>, Vec<f32>), ImportError> {
        let Some(name) = n.input.get(k).filter(|s| !s.is_empty()) else {
            return Err(unsupported(
                n,
                format!("input {k} is missing; expected {expected}"),
            ));
        };
        match self.0.get(name) {
            None => Err(ImportError::NotConstant {
                node: node_name(n),
                op: n.op_type.clone(),
                input: name.clone(),
                expected: expected.to_string(),
            }),
            Some(c) => match &c.floats {
                Some(v) => Ok((c.dims.clone(), v.clone())),
                None => Err(ImportError::NonFloatTensor {
                    node: node_name(n),
                    op: n.op_type.clone(),
                    tensor: name.clone(),
                    dtype: data_type_name(c.data_type),
                    expected: format!("FLOAT ({expected})"),
                }),
            },
        }
    }

    fn ints(
        &self,
        n: &NodeProto,
        k: usize,
        expected: &str,
    ) -> Result<Option<Vec<i64>>, ImportError> {
        let Some(name) = n.input.get(k).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        match self.0.get(name) {
            None => Err(ImportError::NotConstant {
                node: node_name(n),
                op: n.op_type.clone(),
                input: name.clone(),
                expected: expected.to_string(),
            }),
            Some(c) => c
                .ints
                .clone()
                .map(Some)
                .ok_or_else(|| ImportError::NonFloatTensor {
                    node: node_name(n),
                    op: n.op_type.clone(),
                    tensor: name.clone(),
                    dtype: data_type_name(c.data_type),
                    expected: format!("INT64 ({expected})"),
                }),
        }
    }

    fn scalar(&self, n: &NodeProto, k: usize) -> Result<Option<f32>, ImportError> {
        if n.input.get(k).is_none_or(|s| s.is_empty()) {
            return Ok(None);
        }
        let (_, v) = self.floats(n, k, "a constant bound")?;
        Ok(v.first().copied())
    }
}

/// The engine-side shape of the current value: a `[t][w][c]` window, or a flat vector.
#[derive(Clone, Copy, Debug)]
struct Shape {
    t: usize,
    w: usize,
    c: usize,
}

/// Reads an ONNX model and lowers it to the op chain.
pub(crate) fn lower(bytes: &[u8], path: &Path, output: Option<&str>) -> Result<Graph, ImportError> {
    let decode_err = |message: String| ImportError::Decode {
        path: path.to_path_buf(),
        format: "ONNX",
        message,
    };
    let model = ModelProto::decode(bytes).map_err(|e| decode_err(e.to_string()))?;
    let graph = model
        .graph
        .ok_or_else(|| decode_err("the model has no graph".into()))?;
    let mut consts = Consts(
        graph
            .initializer
            .iter()
            .map(|t| (t.name.clone(), decode(t)))
            .collect(),
    );
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !consts.0.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(ImportError::Graph(format!(
            "{} graph inputs besides the initializers, expected one",
            inputs.len()
        )));
    };
    let tensor_type = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let dims: Vec<Option<i64>> = tensor_type
        .and_then(|t| t.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| d.dim_value.filter(|&v| v > 0))
                .collect()
        })
        .unwrap_or_default();
    if let Some(t) = tensor_type.filter(|t| t.elem_type != FLOAT) {
        return Err(ImportError::NonFloatTensor {
            node: input.name.clone(),
            op: "input".into(),
            tensor: input.name.clone(),
            dtype: data_type_name(t.elem_type),
            expected: "FLOAT features".into(),
        });
    }
    let fixed: Option<Vec<usize>> = dims.iter().map(|d| d.map(|v| v as usize)).collect();
    let shape = match fixed.as_deref() {
        Some(&[1, c, t, w]) => Shape { t, w, c },
        _ => {
            return Err(ImportError::DynamicShape {
                node: input.name.clone(),
                op: "input".into(),
                detail: format!(
                    "input shape {dims:?}, expected [1, channels, time, width] with every \
                     dimension fixed (the window the model was made for)"
                ),
            })
        }
    };
    let window_frames = shape.t;
    let (width, channels) = (shape.w, shape.c);
    let mut cur = input.name.clone();
    let mut shape = shape;
    let mut flat = false;
    let mut steps = Vec::new();
    let stop = output
        .map(String::from)
        .or_else(|| graph.output.first().map(|o| o.name.clone()));
    for n in &graph.node {
        if n.op_type == "Constant" {
            if let (Some(out), Some(t)) = (
                n.output.first(),
                attr(n, "value").and_then(|a| a.t.as_ref()),
            ) {
                consts.0.insert(out.clone(), decode(t));
            }
            continue;
        }
        if !n.input.contains(&cur) {
            continue;
        }
        lower_node(n, &consts, &mut shape, &mut flat, &mut steps)?;
        cur = n.output.first().cloned().unwrap_or_default();
        if stop.as_deref() == Some(cur.as_str()) {
            break;
        }
    }
    if stop.as_deref().is_some_and(|s| s != cur) {
        return Err(ImportError::Graph(format!(
            "the chain from input `{}` ends at `{cur}`, not at the output `{}`",
            input.name,
            stop.unwrap_or_default()
        )));
    }
    Ok(Graph {
        steps,
        width,
        channels,
        window_frames,
        frontend: None,
        time_axis: "H axis (NCHW axis 2)",
    })
}

fn lower_node(
    n: &NodeProto,
    consts: &Consts,
    shape: &mut Shape,
    flat: &mut bool,
    steps: &mut Vec<Step>,
) -> Result<(), ImportError> {
    let c = shape.c;
    match n.op_type.as_str() {
        "Identity" | "Dropout" => {}
        "Conv" => {
            if *flat {
                return Err(unsupported(n, "a convolution after flattening".into()));
            }
            let (wd, w) = consts.floats(n, 1, "constant weights")?;
            let group = attr_int(n, "group").unwrap_or(1) as usize;
            if wd.len() != 4 {
                return Err(unsupported(
                    n,
                    format!("weights of shape {wd:?}, expected [C_out, C_in / group, k_t, k_w]"),
                ));
            }
            let (co, kt, kw) = (wd[0], wd[2], wd[3]);
            let strides = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
            let dil = attr_ints(n, "dilations").unwrap_or(vec![1, 1]);
            if dil.len() != 2 || dil[1] != 1 || dil[0] < 1 {
                return Err(bad_attr(
                    n,
                    "dilations",
                    dil,
                    "[d, 1] (dilation in time only)",
                ));
            }
            if strides.len() != 2 || strides.iter().any(|&s| s < 1) {
                return Err(bad_attr(n, "strides", strides, "[s_t, s_w]"));
            }
            let (st, sw, d) = (strides[0] as usize, strides[1] as usize, dil[0] as usize);
            if let Some(a) = attr(n, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned())
            {
                if a != "NOTSET" {
                    return Err(bad_attr(n, "auto_pad", a, "NOTSET with explicit pads"));
                }
            }
            let pads = attr_ints(n, "pads").unwrap_or(vec![0, 0, 0, 0]);
            if pads.len() != 4 || pads.iter().any(|&p| p < 0) {
                return Err(bad_attr(
                    n,
                    "pads",
                    pads,
                    "[t_begin, w_begin, t_end, w_end]",
                ));
            }
            let (tb, wb, te, we) = (
                pads[0] as usize,
                pads[1] as usize,
                pads[2] as usize,
                pads[3] as usize,
            );
            let span_t = (kt - 1) * d + 1;
            let out_t = (shape.t + tb + te).checked_sub(span_t).map(|x| x / st + 1);
            let out_w = (shape.w + wb + we).checked_sub(kw).map(|x| x / sw + 1);
            if out_t != Some(shape.t.div_ceil(st)) || out_w != Some(shape.w.div_ceil(sw)) {
                return Err(bad_attr(
                    n,
                    "pads",
                    pads,
                    &format!(
                        "padding that keeps ceil(size / stride) outputs ({} x {})",
                        shape.t.div_ceil(st),
                        shape.w.div_ceil(sw)
                    ),
                ));
            }
            let causal = kt > 1 && tb == (kt - 1) * d && te == 0;
            if !causal {
                centered_pad(&node_name(n), &n.op_type, tb, kt, d, shape.t)?;
            }
            if wb >= kw.max(1) && kw > 0 && wb > 0 {
                return Err(bad_attr(
                    n,
                    "pads",
                    pads,
                    "a width padding smaller than the kernel",
                ));
            }
            let (kind, weight, out_c) = if group == 1 {
                let kind = if kt == 1 && kw == 1 && st == 1 && sw == 1 {
                    ConvKind::Pointwise
                } else {
                    ConvKind::Standard
                };
                if wd[1] != c {
                    return Err(unsupported(
                        n,
                        format!("weights for {} input channels, the input has {c}", wd[1]),
                    ));
                }
                (kind, w, co)
            } else if group == c && co == c && wd[1] == 1 {
                (ConvKind::Depthwise, w, c)
            } else {
                return Err(bad_attr(
                    n,
                    "group",
                    group,
                    &format!("1 or the channel count {c} (depthwise, one filter per channel)"),
                ));
            };
            steps.push(Step::Conv {
                node: node_name(n),
                kind,
                weight,
                out_channels: out_c,
                kernel: (kt, kw),
                stride: (st, sw),
                dilation: d,
                centered: !causal,
                pad_left: wb,
            });
            if n.input.get(2).is_some_and(|s| !s.is_empty()) {
                let (_, b) = consts.floats(n, 2, "a constant bias")?;
                steps.push(Step::Affine {
                    node: node_name(n),
                    op: n.op_type.clone(),
                    scale: None,
                    shift: b,
                });
            }
            *shape = Shape {
                t: shape.t.div_ceil(st),
                w: shape.w.div_ceil(sw),
                c: out_c,
            };
        }
        "BatchNormalization" => {
            let eps = attr(n, "epsilon").map_or(1e-5, |a| a.f);
            let (_, g) = consts.floats(n, 1, "a constant scale")?;
            let (_, b) = consts.floats(n, 2, "a constant bias")?;
            let (_, m) = consts.floats(n, 3, "a constant mean")?;
            let (_, v) = consts.floats(n, 4, "a constant variance")?;
            steps.push(crate::lower::batch_norm(
                node_name(n),
                n.op_type.clone(),
                (&g, &b, &m, &v),
                eps,
            ));
        }
        "Add" | "Mul" => {
            let k = if consts.0.contains_key(&n.input[0]) {
                0
            } else {
                1
            };
            let (dims, v) = consts.floats(n, k, "a constant per-channel operand")?;
            let v = if v.len() == 1 { vec![v[0]; c] } else { v };
            if v.len() != c {
                return Err(unsupported(n, format!("a constant of shape {dims:?}, expected one value per channel ({c}) or a scalar")));
            }
            steps.push(if n.op_type == "Mul" {
                Step::Affine {
                    node: node_name(n),
                    op: n.op_type.clone(),
                    scale: Some(v),
                    shift: vec![0.0; c],
                }
            } else {
                Step::Affine {
                    node: node_name(n),
                    op: n.op_type.clone(),
                    scale: None,
                    shift: v,
                }
            });
        }
        "Relu" => steps.push(Step::Activation(Activation::Relu)),
        "Clip" => {
            let lo = consts
                .scalar(n, 1)?
                .or(attr(n, "min").map(|a| a.f))
                .unwrap_or(f32::MIN);
            let hi = consts
                .scalar(n, 2)?
                .or(attr(n, "max").map(|a| a.f))
                .unwrap_or(f32::MAX);
            match (lo, hi) {
                (0.0, 6.0) => steps.push(Step::Activation(Activation::Relu6)),
                (0.0, h) if h >= f32::MAX => steps.push(Step::Activation(Activation::Relu)),
                _ => return Err(bad_attr(n, "min/max", (lo, hi), "(0, 6) or (0, none)")),
            }
        }
        "GlobalAveragePool" | "AveragePool" | "ReduceMean" => {
            if n.op_type == "AveragePool" {
                let k = attr_ints(n, "kernel_shape").unwrap_or_default();
                if k != [shape.t as i64, shape.w as i64] {
                    return Err(bad_attr(
                        n,
                        "kernel_shape",
                        k,
                        &format!("[{}, {}] (the whole window and width)", shape.t, shape.w),
                    ));
                }
            }
            if n.op_type == "ReduceMean" {
                let mut axes = match attr_ints(n, "axes") {
                    Some(a) if !a.is_empty() => a,
                    _ => consts.ints(n, 1, "constant axes")?.unwrap_or_default(),
                };
                axes.iter_mut().for_each(|a| {
                    if *a < 0 {
                        *a += 4
                    }
                });
                axes.sort_unstable();
                if axes != [2, 3] {
                    return Err(bad_attr(n, "axes", axes, "[2, 3] (time and width)"));
                }
                if attr_int(n, "keepdims") == Some(0) {
                    *flat = true;
                }
            }
            steps.push(Step::AvgPool { frames: shape.t });
            *shape = Shape { t: 1, w: 1, c };
        }
        "Flatten" | "Reshape" | "Squeeze" => {
            if shape.t != 1 || shape.w != 1 {
                return Err(unsupported(n, format!("a reshape of a {} x {} x {c} (time x width x channels) value: only pooled [1, C, 1, 1] values may be flattened", shape.t, shape.w)));
            }
            *flat = true;
        }
        "Gemm" | "MatMul" => {
            if shape.t != 1 || shape.w != 1 {
                return Err(unsupported(
                    n,
                    "a fully connected layer before pooling over time".into(),
                ));
            }
            let (wd, w) = consts.floats(n, 1, "constant weights")?;
            let trans_b = n.op_type == "Gemm" && attr_int(n, "transB") == Some(1);
            if n.op_type == "Gemm" {
                for (a, v) in [("alpha", 1.0f32), ("beta", 1.0)] {
                    if let Some(x) = attr(n, a).map(|x| x.f).filter(|&x| x != v) {
                        return Err(bad_attr(n, a, x, "1"));
                    }
                }
                if attr_int(n, "transA") == Some(1) {
                    return Err(bad_attr(n, "transA", 1, "0"));
                }
            }
            if wd.len() != 2 {
                return Err(unsupported(
                    n,
                    format!("weights of shape {wd:?}, expected a matrix"),
                ));
            }
            let (inputs, units) = if trans_b {
                (wd[1], wd[0])
            } else {
                (wd[0], wd[1])
            };
            if inputs != c {
                return Err(unsupported(
                    n,
                    format!("weights of shape {wd:?} for {c} inputs"),
                ));
            }
            let weight = if trans_b {
                w
            } else {
                let mut t = vec![0.0; w.len()];
                for i in 0..inputs {
                    for u in 0..units {
                        t[u * inputs + i] = w[i * units + u];
                    }
                }
                t
            };
            steps.push(Step::Dense {
                node: node_name(n),
                weight,
                units,
            });
            if n.op_type == "Gemm" && n.input.get(2).is_some_and(|s| !s.is_empty()) {
                let (_, b) = consts.floats(n, 2, "a constant bias")?;
                steps.push(Step::Affine {
                    node: node_name(n),
                    op: n.op_type.clone(),
                    scale: None,
                    shift: b,
                });
            }
            *flat = true;
            *shape = Shape {
                t: 1,
                w: 1,
                c: units,
            };
        }
        "Softmax" => steps.push(Step::Softmax),
        other => {
            return Err(ImportError::UnsupportedOp {
                node: node_name(n),
                op: other.to_string(),
                expected: SUPPORTED_OPS.to_string(),
            })
        }
    }
    Ok(())
}
