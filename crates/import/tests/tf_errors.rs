//! Bad TensorFlow graphs: each gives a typed error naming the node, its op and what was
//! expected, and nothing is written.

use std::path::PathBuf;

use prost::Message;
use sepstream_import::tf_proto::{
    attr_value::Value, AttrValue, Dim, GraphDef, ListValue, NodeDef, TensorProto, TensorShapeProto,
    DT_FLOAT, DT_INT32,
};
use sepstream_import::{import_path, ImportError, ImportOptions};

fn node(name: &str, op: &str, inputs: &[&str], attrs: Vec<(&str, Value)>) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        device: String::new(),
        attr: attrs
            .into_iter()
            .map(|(k, v)| (k.to_string(), AttrValue { value: Some(v) }))
            .collect(),
    }
}

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

fn float_const(name: &str, dims: &[i64], seed: f32) -> NodeDef {
    let n: i64 = dims.iter().product();
    let vals: Vec<f32> = (0..n)
        .map(|i| ((i as f32 + seed) * 0.37).sin() * 0.5)
        .collect();
    node(
        name,
        "Const",
        &[],
        vec![(
            "value",
            Value::Tensor(TensorProto {
                dtype: DT_FLOAT,
                tensor_shape: Some(shape(dims)),
                float_val: vals,
                ..Default::default()
            }),
        )],
    )
}

fn int_const(name: &str, vals: &[i32]) -> NodeDef {
    node(
        name,
        "Const",
        &[],
        vec![(
            "value",
            Value::Tensor(TensorProto {
                dtype: DT_INT32,
                tensor_shape: Some(shape(&[vals.len() as i64])),
                int_val: vals.to_vec(),
                ..Default::default()
            }),
        )],
    )
}

fn ints(v: &[i64]) -> Value {
    Value::List(ListValue {
        i: v.to_vec(),
        ..Default::default()
    })
}

fn placeholder(dims: &[i64]) -> NodeDef {
    node(
        "features",
        "Placeholder",
        &[],
        vec![("shape", Value::Shape(shape(dims)))],
    )
}

fn conv(name: &str, input: &str, filter: &str, padding: &str) -> NodeDef {
    node(
        name,
        "Conv2D",
        &[input, filter],
        vec![
            ("strides", ints(&[1, 1, 1, 1])),
            ("padding", Value::S(padding.as_bytes().to_vec())),
            ("data_format", Value::S(b"NHWC".to_vec())),
        ],
    )
}

/// features [1, 8, 4, 1] -> conv 3x3 (4 ch) + bias + relu -> mean over time and width -> dense 3 -> softmax.
fn good_graph() -> Vec<NodeDef> {
    vec![
        placeholder(&[1, 8, 4, 1]),
        float_const("net/conv/w", &[3, 3, 1, 4], 1.0),
        conv("net/conv/Conv2D", "features", "net/conv/w", "SAME"),
        float_const("net/conv/b", &[4], 2.0),
        node(
            "net/conv/BiasAdd",
            "BiasAdd",
            &["net/conv/Conv2D", "net/conv/b"],
            vec![],
        ),
        node("net/conv/Relu", "Relu", &["net/conv/BiasAdd"], vec![]),
        int_const("net/pool/axes", &[1, 2]),
        node(
            "net/pool/Mean",
            "Mean",
            &["net/conv/Relu", "net/pool/axes"],
            vec![],
        ),
        float_const("net/fc/w", &[4, 3], 3.0),
        node(
            "net/fc/MatMul",
            "MatMul",
            &["net/pool/Mean", "net/fc/w"],
            vec![],
        ),
        node("labels_softmax", "Softmax", &["net/fc/MatMul"], vec![]),
    ]
}

fn write_graph(tag: &str, nodes: Vec<NodeDef>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepstream-import-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.pb");
    std::fs::write(&path, GraphDef { node: nodes }.encode_to_vec()).unwrap();
    path
}

#[allow(clippy::result_large_err)] // a test helper: the error is inspected, not propagated
fn import(tag: &str, nodes: Vec<NodeDef>) -> Result<sepstream_import::Imported, ImportError> {
    let path = write_graph(tag, nodes);
    let opts = ImportOptions {
        frame_rate: Some(100.0),
        ..ImportOptions::default()
    };
    import_path(&path, &opts)
}

/// The graph with node `name` replaced.
fn with(name: &str, replacement: NodeDef) -> Vec<NodeDef> {
    good_graph()
        .into_iter()
        .map(|n| {
            if n.name == name {
                replacement.clone()
            } else {
                n
            }
        })
        .collect()
}

#[test]
fn a_small_graph_imports_and_writes_spec_and_weights() {
    let imported = import("good", good_graph()).unwrap();
    let kinds: Vec<&str> = imported.spec.layers.iter().map(|l| l.kind.name()).collect();
    assert_eq!(kinds, ["conv2d", "avgpool", "dense", "softmax"]);
    assert_eq!(imported.spec.layers[0].centered, Some(true));
    assert_eq!(imported.spec.layers[1].frames, Some(8));
    let net = imported.network().unwrap();
    assert_eq!(net.delay(), 1);
    let dir = std::env::temp_dir().join(format!("sepstream-import-{}-write", std::process::id()));
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    let spec_path = dir.join("configs/m.toml");
    let weights_path = dir.join("assets/m.safetensors");
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    imported.write(&spec_path, &weights_path).unwrap();
    let back = sepstream_nn::Network::load(&spec_path).unwrap();
    let x: Vec<f32> = (0..32).map(|i| (i as f32 * 0.3).cos()).collect();
    assert_eq!(back.forward_window(&x, 8), net.forward_window(&x, 8));
}

#[test]
fn unsupported_op_names_node_and_op() {
    let err = import(
        "op",
        with(
            "net/conv/Relu",
            node("net/conv/Relu", "Tanh", &["net/conv/BiasAdd"], vec![]),
        ),
    )
    .unwrap_err();
    match &err {
        ImportError::UnsupportedOp { node, op, .. } => {
            assert_eq!(node, "net/conv/Relu");
            assert_eq!(op, "Tanh");
        }
        other => panic!("expected UnsupportedOp, got {other}"),
    }
    assert!(
        err.to_string().contains("Conv2D"),
        "lists what is supported: {err}"
    );
}

#[test]
fn unknown_attribute_value_names_the_attribute() {
    let err = import(
        "attr",
        with(
            "net/conv/Conv2D",
            conv("net/conv/Conv2D", "features", "net/conv/w", "VALID"),
        ),
    )
    .unwrap_err();
    match &err {
        ImportError::UnsupportedAttribute { node, op, attr, .. } => {
            assert_eq!(
                (node.as_str(), op.as_str(), attr.as_str()),
                ("net/conv/Conv2D", "Conv2D", "padding")
            );
        }
        other => panic!("expected UnsupportedAttribute, got {other}"),
    }
    let mut nchw = conv("net/conv/Conv2D", "features", "net/conv/w", "SAME");
    nchw.attr.insert(
        "data_format".into(),
        AttrValue {
            value: Some(Value::S(b"NCHW".to_vec())),
        },
    );
    let err = import("attr2", with("net/conv/Conv2D", nchw)).unwrap_err();
    assert!(
        matches!(&err, ImportError::UnsupportedAttribute { attr, .. } if attr == "data_format"),
        "{err}"
    );
}

#[test]
fn non_float_weights_are_refused() {
    let err = import(
        "dtype",
        with("net/conv/b", int_const("net/conv/b", &[1, 2, 3, 4])),
    )
    .unwrap_err();
    match &err {
        ImportError::NonFloatTensor {
            node, op, dtype, ..
        } => {
            assert_eq!(
                (node.as_str(), op.as_str()),
                ("net/conv/BiasAdd", "BiasAdd")
            );
            assert_eq!(dtype, "DT_INT32");
        }
        other => panic!("expected NonFloatTensor, got {other}"),
    }
}

#[test]
fn dynamic_time_axis_is_refused() {
    let err = import("dynamic", with("features", placeholder(&[1, -1, 4, 1]))).unwrap_err();
    match &err {
        ImportError::DynamicShape { node, op, .. } => {
            assert_eq!((node.as_str(), op.as_str()), ("features", "Placeholder"));
        }
        other => panic!("expected DynamicShape, got {other}"),
    }
}

#[test]
fn weights_that_are_not_constants_are_refused() {
    let mut nodes = with("net/conv/w", placeholder(&[3, 3, 1, 4]));
    nodes
        .iter_mut()
        .find(|n| n.name == "features")
        .unwrap()
        .name = "features".into();
    // The filter is now a second placeholder named like the weights.
    for n in nodes.iter_mut() {
        if n.op == "Placeholder" && n.attr.get("shape").is_some_and(|a| matches!(&a.value, Some(Value::Shape(s)) if s.dim.len() == 4 && s.dim[0].size == 3)) {
            n.name = "net/conv/w".into();
        }
    }
    let err = import("notconst", nodes).unwrap_err();
    match &err {
        ImportError::NotConstant {
            node, op, input, ..
        } => {
            assert_eq!(
                (node.as_str(), op.as_str(), input.as_str()),
                ("net/conv/Conv2D", "Conv2D", "net/conv/w")
            );
        }
        other => panic!("expected NotConstant, got {other}"),
    }
}

#[test]
fn a_file_that_is_not_a_graph_is_refused() {
    let path = write_graph("garbage", vec![]);
    std::fs::write(&path, b"\xff\xff\xff not a protobuf").unwrap();
    let err = import_path(&path, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("model.pb"), "{err}");
}

/// Found by the import_tf_graph fuzz target: a graph whose inputs loop used to import forever.
#[test]
fn a_graph_with_a_cycle_is_refused() {
    // The activation reads itself.
    let looped = with(
        "net/conv/Relu",
        node("net/conv/Relu", "Relu", &["net/conv/Relu"], vec![]),
    );
    let err = import("cycle", looped).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    // The weights are two Identity nodes reading each other.
    let mut nodes = with(
        "net/conv/w",
        node("net/conv/w", "Identity", &["net/conv/w_again"], vec![]),
    );
    nodes.push(node(
        "net/conv/w_again",
        "Identity",
        &["net/conv/w"],
        vec![],
    ));
    let err = import("identity-cycle", nodes).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
}
