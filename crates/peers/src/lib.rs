//! Peers of the sepstream DS-CNN: the same model and weights run by candle (what a Rust user
//! writes first: NCHW tensors, `conv2d`, the whole window per hop) and by tract (from an ONNX
//! export of the network, built here from `tract_onnx::pb` messages and writable as a file).
//!
//! Both peers compute the output that the window of `Network::receptive_field()` input frames
//! determines: its last output frame (the posteriors of the newest hop).

use candle_core::{DType, Device, Module, Tensor, D};
use sepstream_nn::layers::{Conv, Depthwise, Pointwise};
use sepstream_nn::{Activation, Network, Op};
use tract_onnx::pb;
use tract_onnx::prelude::{
    tvec, Datum, Framework, InferenceModelExt, SimplePlan, TypedFact, TypedModel,
    TypedRunnableModel,
};

/// What can go wrong building or running a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("layer `{layer}` ({kind}) is not supported by the {peer} peer: {reason}")]
    Unsupported {
        peer: &'static str,
        layer: String,
        kind: String,
        reason: String,
    },
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tract: {0}")]
    Tract(String),
    #[error("writing {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn unsupported(peer: &'static str, l: &sepstream_nn::Layer, reason: &str) -> PeerError {
    PeerError::Unsupported {
        peer,
        layer: l.name.clone(),
        kind: l.kind.clone(),
        reason: reason.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// candle

enum CandleLayer {
    /// conv2d with explicit zero padding (time: causal; width: same), stride, groups.
    Conv {
        w: Tensor,
        b: Tensor,
        pad_t: usize,
        pad_l: usize,
        pad_r: usize,
        stride: usize,
        groups: usize,
        act: Activation,
    },
    /// Mean over the last `frames` frames (zeros before the start) and the width.
    AvgPool {
        frames: usize,
        width: usize,
    },
    Dense {
        w_t: Tensor,
        b: Tensor,
    },
    Softmax,
}

/// The DS-CNN in candle, NCHW with H = time, W = features, CPU, f32.
pub struct CandleNet {
    layers: Vec<CandleLayer>,
    width: usize,
    channels: usize,
}

fn act_candle(x: Tensor, a: Activation) -> candle_core::Result<Tensor> {
    match a {
        Activation::Identity => Ok(x),
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.clamp(0f32, 6f32),
    }
}

impl CandleNet {
    pub fn new(net: &Network) -> Result<Self, PeerError> {
        let dev = Device::Cpu;
        let conv = |geom: &sepstream_nn::layers::ConvGeometry,
                    l: &sepstream_nn::Layer,
                    w: &[f32],
                    shape: (usize, usize, usize, usize),
                    b: &[f32],
                    groups: usize,
                    act: Activation|
         -> Result<CandleLayer, PeerError> {
            if geom.s_t != geom.s_w {
                return Err(unsupported(
                    "candle",
                    l,
                    "conv2d takes one stride for both axes",
                ));
            }
            if geom.dilation != 1 {
                return Err(unsupported("candle", l, "time-only dilation"));
            }
            Ok(CandleLayer::Conv {
                w: Tensor::from_slice(w, shape, &dev)?,
                b: Tensor::from_slice(b, (1, b.len(), 1, 1), &dev)?,
                pad_t: geom.history_frames(),
                pad_l: geom.pad_left(),
                pad_r: geom.k_w - 1 - geom.pad_left(),
                stride: geom.s_t,
                groups,
                act,
            })
        };
        let dw = |l: &sepstream_nn::Layer, d: &Depthwise| {
            let g = &d.geom;
            let c = g.input.channels;
            conv(
                g,
                l,
                &d.weight,
                (c, 1, g.k_t, g.k_w),
                &d.bias,
                c,
                d.activation,
            )
        };
        let pw = |l: &sepstream_nn::Layer, p: &Pointwise| {
            let g = sepstream_nn::layers::ConvGeometry::new(p.input, (1, 1), (1, 1), 1, false);
            let (ci, co) = (p.input.channels, p.out_channels);
            conv(&g, l, &p.weight, (co, ci, 1, 1), &p.bias, 1, p.activation)
        };
        let std_conv = |l: &sepstream_nn::Layer, c: &Conv| {
            let g = &c.geom;
            let shape = (c.out_channels, g.input.channels, g.k_t, g.k_w);
            conv(g, l, &c.weight, shape, &c.bias, 1, c.activation)
        };
        let mut layers = Vec::new();
        for l in net.layers() {
            match &l.op {
                Op::Conv(c) => layers.push(std_conv(l, c)?),
                Op::Depthwise(d) => layers.push(dw(l, d)?),
                Op::Pointwise(p) => layers.push(pw(l, p)?),
                Op::Separable(s) => {
                    layers.push(dw(l, &s.depthwise)?);
                    layers.push(pw(l, &s.pointwise)?);
                }
                Op::AvgPool(p) => layers.push(CandleLayer::AvgPool {
                    frames: p.frames,
                    width: p.input.width,
                }),
                Op::Dense(d) => {
                    if d.input.width != 1 || d.activation != Activation::Identity {
                        return Err(unsupported("candle", l, "dense after a width-1 frame only"));
                    }
                    let w = Tensor::from_slice(&d.weight, (d.units, d.input.len()), &dev)?;
                    layers.push(CandleLayer::Dense {
                        w_t: w.t()?.contiguous()?,
                        b: Tensor::from_slice(&d.bias, (1, d.units), &dev)?,
                    });
                }
                Op::Softmax(_) => layers.push(CandleLayer::Softmax),
                Op::Activation(..) => {
                    return Err(unsupported("candle", l, "not needed for DS-CNN"))
                }
            }
        }
        Ok(Self {
            layers,
            width: net.input_shape().width,
            channels: net.input_shape().channels,
        })
    }

    /// The last output frame of the window `frames` (`t` frames of `[w][c]` values).
    pub fn forward_window(&self, frames: &[f32], t: usize) -> Result<Vec<f32>, PeerError> {
        let x = Tensor::from_slice(frames, (1, t, self.width, self.channels), &Device::Cpu)?;
        // [t][w][c] -> NCHW [1, c, t, w]
        let mut x = x.permute((0, 3, 1, 2))?.contiguous()?;
        for layer in &self.layers {
            x = match layer {
                CandleLayer::Conv {
                    w,
                    b,
                    pad_t,
                    pad_l,
                    pad_r,
                    stride,
                    groups,
                    act,
                } => {
                    let xp = x
                        .pad_with_zeros(2, *pad_t, 0)?
                        .pad_with_zeros(3, *pad_l, *pad_r)?;
                    let y = xp.conv2d(w, 0, *stride, 1, *groups)?.broadcast_add(b)?;
                    act_candle(y, *act)?
                }
                CandleLayer::AvgPool { frames, width } => {
                    let t = x.dim(2)?;
                    let n = (*frames).min(t);
                    let last = x.narrow(2, t - n, n)?;
                    (last.sum((2, 3))? / (*frames * *width) as f64)?
                }
                CandleLayer::Dense { w_t, b } => {
                    x.flatten_from(1)?.matmul(w_t)?.broadcast_add(b)?
                }
                CandleLayer::Softmax => candle_nn::ops::softmax_last_dim(&x)?,
            };
        }
        // Anything left with a time axis: keep its last frame.
        let x = if x.rank() == 4 {
            let t = x.dim(2)?;
            x.narrow(2, t - 1, 1)?
                .permute((0, 2, 3, 1))?
                .flatten_all()?
        } else {
            x.flatten_all()?
        };
        Ok(x.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }
}

/// Unused import guard for `Module` and `D` (kept for readers extending the peer).
#[allow(dead_code)]
fn _uses(_: &dyn Module, _: D) {}

// ---------------------------------------------------------------------------------------------
// ONNX export and tract

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: data.to_vec(),
        ..Default::default()
    }
}

fn tensor_i64(name: &str, data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Value::DimValue(d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// The network as an ONNX model (opset 11) over a window of `t` frames: input `x` of shape
/// [1, C, t, W] (NCHW, H = time), output `y`: the last output frame. Causal time padding and
/// "same" width padding are Conv `pads` (begin time, begin width, end time, end width).
pub fn to_onnx(net: &Network, t: usize) -> Result<pb::ModelProto, PeerError> {
    let input = net.input_shape();
    let mut g = pb::GraphProto {
        name: net.spec().name.clone(),
        input: vec![value_info("x", &[1, input.channels, t, input.width])],
        ..Default::default()
    };
    let mut cur = "x".to_string();
    let mut time = t;
    let mut push_act = |g: &mut pb::GraphProto, cur: &mut String, name: &str, a: Activation| {
        let out = format!("{name}.act");
        match a {
            Activation::Identity => return,
            Activation::Relu => g.node.push(node("Relu", &out, &[cur], &out, vec![])),
            Activation::Relu6 => {
                g.initializer
                    .push(tensor(&format!("{out}.lo"), &[], &[0.0]));
                g.initializer
                    .push(tensor(&format!("{out}.hi"), &[], &[6.0]));
                let (lo, hi) = (format!("{out}.lo"), format!("{out}.hi"));
                g.node
                    .push(node("Clip", &out, &[cur, &lo, &hi], &out, vec![]));
            }
        }
        *cur = out;
    };
    let conv_node = |g: &mut pb::GraphProto,
                     cur: &mut String,
                     name: &str,
                     geom: &sepstream_nn::layers::ConvGeometry,
                     w: &[f32],
                     wdims: &[usize],
                     b: &[f32],
                     groups: usize| {
        let (wn, bn) = (format!("{name}.weight"), format!("{name}.bias"));
        g.initializer.push(tensor(&wn, wdims, w));
        g.initializer.push(tensor(&bn, &[b.len()], b));
        let pl = geom.pad_left();
        let attrs = vec![
            attr_ints("kernel_shape", &[geom.k_t as i64, geom.k_w as i64]),
            attr_ints("strides", &[geom.s_t as i64, geom.s_w as i64]),
            attr_ints("dilations", &[geom.dilation as i64, 1]),
            attr_ints(
                "pads",
                &[
                    geom.history_frames() as i64,
                    pl as i64,
                    0,
                    (geom.k_w - 1 - pl) as i64,
                ],
            ),
            attr_int("group", groups as i64),
        ];
        let out = format!("{name}.out");
        g.node
            .push(node("Conv", &out, &[cur, &wn, &bn], &out, attrs));
        *cur = out;
    };
    for l in net.layers() {
        let n = l.name.as_str();
        match &l.op {
            Op::Conv(c) => {
                let gm = &c.geom;
                let dims = [c.out_channels, gm.input.channels, gm.k_t, gm.k_w];
                conv_node(&mut g, &mut cur, n, gm, &c.weight, &dims, &c.bias, 1);
                push_act(&mut g, &mut cur, n, c.activation);
                time = time.div_ceil(gm.s_t);
            }
            Op::Separable(s) => {
                let d = &s.depthwise;
                let gm = &d.geom;
                let c = gm.input.channels;
                let dn = format!("{n}.depthwise");
                conv_node(
                    &mut g,
                    &mut cur,
                    &dn,
                    gm,
                    &d.weight,
                    &[c, 1, gm.k_t, gm.k_w],
                    &d.bias,
                    c,
                );
                push_act(&mut g, &mut cur, &dn, d.activation);
                let p = &s.pointwise;
                let pg = sepstream_nn::layers::ConvGeometry::new(p.input, (1, 1), (1, 1), 1, false);
                let pn = format!("{n}.pointwise");
                let dims = [p.out_channels, p.input.channels, 1, 1];
                conv_node(&mut g, &mut cur, &pn, &pg, &p.weight, &dims, &p.bias, 1);
                push_act(&mut g, &mut cur, &pn, p.activation);
                time = time.div_ceil(gm.s_t);
            }
            Op::AvgPool(p) => {
                let keep = p.frames.min(time) as i64;
                for (suffix, v) in [("starts", -keep), ("ends", i64::MAX), ("axes", 2)] {
                    g.initializer
                        .push(tensor_i64(&format!("{n}.{suffix}"), &[v]));
                }
                let out = format!("{n}.slice");
                let (s, e, a) = (
                    format!("{n}.starts"),
                    format!("{n}.ends"),
                    format!("{n}.axes"),
                );
                g.node
                    .push(node("Slice", &out, &[&cur, &s, &e, &a], &out, vec![]));
                let sum = format!("{n}.sum");
                g.node.push(node(
                    "ReduceSum",
                    &sum,
                    &[&out],
                    &sum,
                    vec![attr_ints("axes", &[2, 3]), attr_int("keepdims", 0)],
                ));
                let sc = format!("{n}.scale");
                g.initializer
                    .push(tensor(&sc, &[], &[1.0 / (p.frames * p.input.width) as f32]));
                let mean = format!("{n}.mean");
                g.node.push(node("Mul", &mean, &[&sum, &sc], &mean, vec![]));
                cur = mean;
                time = 1;
            }
            Op::Dense(d) => {
                if d.input.width != 1 || time != 1 {
                    return Err(unsupported("onnx", l, "dense after the pool only"));
                }
                let (wn, bn) = (format!("{n}.weight"), format!("{n}.bias"));
                g.initializer
                    .push(tensor(&wn, &[d.units, d.input.len()], &d.weight));
                g.initializer.push(tensor(&bn, &[d.units], &d.bias));
                let out = format!("{n}.out");
                g.node.push(node(
                    "Gemm",
                    &out,
                    &[&cur, &wn, &bn],
                    &out,
                    vec![attr_int("transB", 1)],
                ));
                cur = out;
                push_act(&mut g, &mut cur, n, d.activation);
            }
            Op::Softmax(_) => {
                let out = format!("{n}.out");
                g.node.push(node(
                    "Softmax",
                    &out,
                    &[&cur],
                    &out,
                    vec![attr_int("axis", 1)],
                ));
                cur = out;
            }
            _ => return Err(unsupported("onnx", l, "not needed for DS-CNN")),
        }
    }
    let out_len = net.output_shape().len();
    g.node.push(node("Identity", "y", &[&cur], "y", vec![]));
    g.output = vec![value_info("y", &[1, out_len])];
    Ok(pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 11,
        }],
        producer_name: "sepstream-peers".into(),
        graph: Some(g),
        ..Default::default()
    })
}

/// Writes the ONNX export to `path`.
pub fn save_onnx(model: &pb::ModelProto, path: &std::path::Path) -> Result<(), PeerError> {
    use prost::Message;
    std::fs::write(path, model.encode_to_vec()).map_err(|source| PeerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

type Plan = SimplePlan<TypedFact, Box<dyn tract_onnx::prelude::TypedOp>, TypedModel>;

/// The DS-CNN in tract: the ONNX export, optimized for a fixed window of `t` frames.
pub struct TractNet {
    plan: std::sync::Arc<Plan>,
    shape: [usize; 4],
}

fn tract_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::Tract(format!("{e:#}"))
}

impl TractNet {
    pub fn new(net: &Network, t: usize) -> Result<Self, PeerError> {
        let proto = to_onnx(net, t)?;
        let model = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(tract_err)?;
        let input = net.input_shape();
        let shape = [1, input.channels, t, input.width];
        let plan: TypedRunnableModel = model
            .with_input_fact(0, f32::fact(shape).into())
            .map_err(tract_err)?
            .into_optimized()
            .map_err(tract_err)?
            .into_runnable()
            .map_err(tract_err)?;
        Ok(Self { plan, shape })
    }

    /// The last output frame of the window (`t` frames of `[w][c]` values).
    pub fn forward_window(&self, frames: &[f32]) -> Result<Vec<f32>, PeerError> {
        let [_, c, t, w] = self.shape;
        // [t][w][c] -> [c][t][w]
        let mut nchw = vec![0.0f32; frames.len()];
        for ti in 0..t {
            for wi in 0..w {
                for ci in 0..c {
                    nchw[(ci * t + ti) * w + wi] = frames[(ti * w + wi) * c + ci];
                }
            }
        }
        let x = tract_onnx::prelude::Tensor::from_shape(&self.shape, &nchw).map_err(tract_err)?;
        let out = self.plan.run(tvec!(x.into())).map_err(tract_err)?;
        let view = out[0].to_array_view::<f32>().map_err(tract_err)?;
        Ok(view.iter().copied().collect())
    }
}

/// Re-exported for the comparison binary.
pub use candle_core;
