//! ONNX export of a sepstream network, built from `tract_onnx::pb` (prost) messages.
//!
//! Layout is NCHW with H = time and W = the frame's width. Causal time padding and "same"
//! width padding are Conv `pads` (begin time, begin width, end time, end width); the running
//! average pool is a depthwise `Conv` with a constant kernel, the dense layer a 1x1 `Conv`,
//! and the softmax runs over the channel axis (opset 13 semantics).

use sepstream_nn::layers::ConvGeometry;
use sepstream_nn::{Activation, Network, Op};
use tract_onnx::pb;

use crate::{unsupported, PeerError};

/// The opset the export declares (Softmax over one axis needs 13).
pub const OPSET: i64 = 13;

/// Which time axis the exported graph has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeAxis {
    /// A fixed window of this many frames; the graph outputs only its last output frame,
    /// `y` of shape [1, units, 1, 1] (the pool reads only the frames it needs).
    Window(usize),
    /// A symbolic time axis `S` (for tract's pulse mode); `y` is every output frame,
    /// [1, units, ceil(S / time_stride), 1].
    Stream,
}

/// The name of the symbolic time dimension of [`TimeAxis::Stream`].
pub const STREAM_SYMBOL: &str = "S";

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

fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
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

/// One dimension of a value's shape: a number or a named symbol.
enum Dim {
    Fixed(usize),
    Param(&'static str),
}

fn value_info(name: &str, dims: Option<&[Dim]>) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let shape = dims.map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => Value::DimValue(*n as i64),
                    Dim::Param(s) => Value::DimParam((*s).to_string()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The graph under construction: nodes and initializers, and the name of the current value.
struct Builder {
    g: pb::GraphProto,
    cur: String,
}

impl Builder {
    fn node(
        &mut self,
        op: &str,
        name: &str,
        extra_inputs: &[&str],
        attrs: Vec<pb::AttributeProto>,
    ) {
        let mut input = vec![self.cur.clone()];
        input.extend(extra_inputs.iter().map(|s| s.to_string()));
        self.g.node.push(pb::NodeProto {
            op_type: op.into(),
            name: name.into(),
            input,
            output: vec![name.into()],
            attribute: attrs,
            ..Default::default()
        });
        self.cur = name.to_string();
    }

    fn init(&mut self, t: pb::TensorProto) -> String {
        let name = t.name.clone();
        self.g.initializer.push(t);
        name
    }

    fn activation(&mut self, name: &str, a: Activation) {
        let out = format!("{name}.act");
        match a {
            Activation::Identity => {}
            Activation::Relu => self.node("Relu", &out, &[], vec![]),
            Activation::Relu6 => {
                let lo = self.init(tensor_f32(&format!("{out}.lo"), &[], &[0.0]));
                let hi = self.init(tensor_f32(&format!("{out}.hi"), &[], &[6.0]));
                self.node("Clip", &out, &[&lo, &hi], vec![]);
            }
        }
    }

    /// A sepstream conv: causal in time, "same" in width, then the activation.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        geom: &ConvGeometry,
        w: &[f32],
        wdims: &[usize],
        b: &[f32],
        groups: usize,
        act: Activation,
    ) {
        let pl = geom.pad_left();
        let pads = [geom.history_frames(), pl, 0, geom.k_w - 1 - pl];
        self.conv_padded(name, geom, (w, wdims), b, groups, pads);
        self.activation(name, act);
    }

    /// A conv with explicit ONNX `pads` (begin time, begin width, end time, end width).
    fn conv_padded(
        &mut self,
        name: &str,
        geom: &ConvGeometry,
        (w, wdims): (&[f32], &[usize]),
        b: &[f32],
        groups: usize,
        pads: [usize; 4],
    ) {
        let wn = self.init(tensor_f32(&format!("{name}.weight"), wdims, w));
        let bn = self.init(tensor_f32(&format!("{name}.bias"), &[b.len()], b));
        let attrs = vec![
            attr_ints("kernel_shape", &[geom.k_t as i64, geom.k_w as i64]),
            attr_ints("strides", &[geom.s_t as i64, geom.s_w as i64]),
            attr_ints("dilations", &[geom.dilation as i64, 1]),
            attr_ints("pads", &pads.map(|p| p as i64)),
            attr_int("group", groups as i64),
        ];
        self.node("Conv", &format!("{name}.out"), &[&wn, &bn], attrs);
    }
}

fn pointwise_geometry(p: &sepstream_nn::layers::Pointwise) -> ConvGeometry {
    ConvGeometry::new(p.input(), (1, 1), (1, 1), 1, false)
}

/// The network as an ONNX model over the time axis `time`; input `x` is [1, C, T, W].
pub fn to_onnx(net: &Network, time: TimeAxis) -> Result<pb::ModelProto, PeerError> {
    let input = net.input_shape();
    let t_dim = match time {
        TimeAxis::Window(t) => Dim::Fixed(t),
        TimeAxis::Stream => Dim::Param(STREAM_SYMBOL),
    };
    let x_dims = [
        Dim::Fixed(1),
        Dim::Fixed(input.channels),
        t_dim,
        Dim::Fixed(input.width),
    ];
    let mut b = Builder {
        g: pb::GraphProto {
            name: net.spec().name.clone(),
            input: vec![value_info("x", Some(&x_dims))],
            ..Default::default()
        },
        cur: "x".to_string(),
    };
    // Frames on the time axis of the current value (window export only).
    let mut frames = match time {
        TimeAxis::Window(t) => Some(t),
        TimeAxis::Stream => None,
    };
    for l in net.layers() {
        let n = l.name.as_str();
        match &l.op {
            Op::Conv(c) => {
                let gm = &c.geom();
                let dims = [c.out_channels(), gm.input.channels, gm.k_t, gm.k_w];
                b.conv(n, gm, c.weight(), &dims, c.bias(), 1, c.activation());
            }
            Op::Depthwise(d) => depthwise(&mut b, n, d),
            Op::Pointwise(p) => pointwise(&mut b, n, p),
            Op::Separable(s) => {
                depthwise(&mut b, &format!("{n}.depthwise"), s.depthwise());
                pointwise(&mut b, &format!("{n}.pointwise"), s.pointwise());
            }
            Op::AvgPool(p) => {
                let mut pad_t = p.frames() - 1;
                if let Some(t) = frames {
                    // Only the last output frame is wanted: keep the frames it reads.
                    let keep = p.frames().min(t);
                    let s = b.init(tensor_i64(&format!("{n}.starts"), &[(t - keep) as i64]));
                    let e = b.init(tensor_i64(&format!("{n}.ends"), &[t as i64]));
                    let a = b.init(tensor_i64(&format!("{n}.axes"), &[2]));
                    b.node("Slice", &format!("{n}.slice"), &[&s, &e, &a], vec![]);
                    pad_t = p.frames() - keep;
                    frames = Some(1);
                }
                // The running mean as a depthwise conv with a constant kernel over (frames,
                // width): its causal zero padding is the pool's, and tract pulsifies padded
                // convs (not padded AveragePools).
                let (c, w) = (l.input().channels, l.input().width);
                let g = ConvGeometry::new(l.input(), (p.frames(), w), (1, w), 1, false);
                let kernel = vec![1.0 / (p.frames() * w) as f32; c * p.frames() * w];
                let dims = [c, 1, p.frames(), w];
                b.conv_padded(n, &g, (&kernel, &dims), &vec![0.0; c], c, [pad_t, 0, 0, 0]);
            }
            Op::Dense(d) => {
                if d.input().width != 1 {
                    return Err(unsupported("onnx", l, "dense over a width-1 frame only"));
                }
                let g = ConvGeometry::new(d.input(), (1, 1), (1, 1), 1, false);
                let dims = [d.units(), d.input().channels, 1, 1];
                b.conv(n, &g, d.weight(), &dims, d.bias(), 1, d.activation());
            }
            Op::Softmax(_) => b.node(
                "Softmax",
                &format!("{n}.out"),
                &[],
                vec![attr_int("axis", 1)],
            ),
            Op::Activation(e) => b.activation(n, e.activation()),
            _ => return Err(unsupported("onnx", l, "the kind is not mapped")),
        }
        if let (Some(t), Some(g)) = (frames, l.geometry()) {
            frames = Some(g.out_frames(t));
        }
    }
    b.node("Identity", "y", &[], vec![]);
    let out = net.output_shape();
    if out.width != 1 {
        return Err(last_layer_error(net));
    }
    b.g.output = vec![match time {
        TimeAxis::Window(_) => value_info(
            "y",
            Some(&[
                Dim::Fixed(1),
                Dim::Fixed(out.channels),
                Dim::Fixed(1),
                Dim::Fixed(1),
            ]),
        ),
        TimeAxis::Stream => value_info("y", None),
    }];
    Ok(pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "sepstream-peers".into(),
        graph: Some(b.g),
        ..Default::default()
    })
}

fn last_layer_error(net: &Network) -> PeerError {
    match net.layers().last() {
        Some(l) => unsupported("onnx", l, "the network must end in a width-1 frame"),
        None => PeerError::Empty,
    }
}

fn depthwise(b: &mut Builder, name: &str, d: &sepstream_nn::layers::Depthwise) {
    let g = &d.geom();
    let c = g.input.channels;
    let dims = [c, 1, g.k_t, g.k_w];
    b.conv(name, g, d.weight(), &dims, d.bias(), c, d.activation());
}

fn pointwise(b: &mut Builder, name: &str, p: &sepstream_nn::layers::Pointwise) {
    let dims = [p.out_channels(), p.input().channels / p.groups(), 1, 1];
    let g = pointwise_geometry(p);
    b.conv(
        name,
        &g,
        p.weight(),
        &dims,
        p.bias(),
        p.groups(),
        p.activation(),
    );
}

/// Writes an ONNX model to `path`.
pub fn save_onnx(model: &pb::ModelProto, path: &std::path::Path) -> Result<(), PeerError> {
    use prost::Message;
    std::fs::write(path, model.encode_to_vec()).map_err(|source| PeerError::Io {
        path: path.to_path_buf(),
        error: source,
    })
}
