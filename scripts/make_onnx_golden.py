#!/usr/bin/env python3
"""A small depthwise-separable keyword CNN built in Keras, exported to ONNX, with golden outputs.

The Keras model (seeded random weights and batch-norm statistics, 'same' padding, a 49 x 10
window of features) is written as ONNX (NCHW, opset 13: Conv, BatchNormalization, Relu, Clip,
GlobalAveragePool, Flatten, Gemm, Softmax) by onnx.helper from the Keras weights, checked
against onnxruntime, and its Keras posteriors for a few seeded inputs are written beside it:
crates/import/tests/golden/small_sep_cnn.onnx and small_sep_cnn.json.

Environment (pinned): Python 3.11, `pip install tensorflow-cpu==2.21.0 onnx==1.19.1
onnxruntime==1.32.0` (numpy 2.4.6). CI does not need Python (the outputs are committed).
"""

import json
import os

import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "import", "tests", "golden")
T, W = 49, 10


def keras_model():
    tf.keras.utils.set_random_seed(7)
    L = tf.keras.layers
    x = inp = L.Input((T, W, 1))
    x = L.Conv2D(16, (5, 3), strides=(2, 1), padding="same", name="stem")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    x = L.DepthwiseConv2D((3, 3), padding="same", name="block_dw")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="block_dw_bn")(x)
    x = L.ReLU(max_value=6.0, name="block_dw_relu6")(x)
    x = L.Conv2D(24, 1, name="block_pw")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="block_pw_bn")(x)
    x = L.ReLU(name="block_pw_relu")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dense(5, name="fc")(x)
    x = L.Softmax(name="softmax")(x)
    model = tf.keras.Model(inp, x)
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, c).astype(np.float32),
                rng.normal(0, 0.2, c).astype(np.float32),
                rng.normal(0, 0.2, c).astype(np.float32),
                rng.uniform(0.5, 2.0, c).astype(np.float32),
            ])
    return model


def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def to_onnx(model):
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def bn(prefix, src):
        g, b, m, v = model.get_layer(prefix).get_weights()
        nodes.append(helper.make_node(
            "BatchNormalization",
            [src, init(prefix + ".g", g), init(prefix + ".b", b), init(prefix + ".m", m),
             init(prefix + ".v", v)], [prefix], name=prefix, epsilon=1e-3))
        return prefix

    t, w = T, W
    # stem: HWIO -> OIHW
    k, bias = model.get_layer("stem").get_weights()
    tb, te, t = same_pads(t, 5, 2)
    wb, we, w = same_pads(w, 3, 1)
    nodes.append(helper.make_node(
        "Conv", ["features", init("stem.w", k.transpose(3, 2, 0, 1)), init("stem.bias", bias)],
        ["stem"], name="stem", kernel_shape=[5, 3], strides=[2, 1], pads=[tb, wb, te, we]))
    x = bn("stem_bn", "stem")
    nodes.append(helper.make_node("Relu", [x], ["stem_relu"], name="stem_relu"))
    # depthwise: [kt, kw, C, 1] -> [C, 1, kt, kw]
    k, bias = model.get_layer("block_dw").get_weights()
    tb, te, t = same_pads(t, 3, 1)
    wb, we, w = same_pads(w, 3, 1)
    nodes.append(helper.make_node(
        "Conv", ["stem_relu", init("block_dw.w", k.transpose(2, 3, 0, 1)),
                 init("block_dw.bias", bias)],
        ["block_dw"], name="block_dw", kernel_shape=[3, 3], group=16, pads=[tb, wb, te, we]))
    x = bn("block_dw_bn", "block_dw")
    nodes.append(helper.make_node(
        "Clip", [x, init("zero", [0.0]), init("six", [6.0])], ["block_dw_relu6"],
        name="block_dw_relu6"))
    k, bias = model.get_layer("block_pw").get_weights()
    nodes.append(helper.make_node(
        "Conv", ["block_dw_relu6", init("block_pw.w", k.transpose(3, 2, 0, 1)),
                 init("block_pw.bias", bias)], ["block_pw"], name="block_pw", kernel_shape=[1, 1]))
    x = bn("block_pw_bn", "block_pw")
    nodes.append(helper.make_node("Relu", [x], ["block_pw_relu"], name="block_pw_relu"))
    nodes.append(helper.make_node("GlobalAveragePool", ["block_pw_relu"], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flat", axis=1))
    k, bias = model.get_layer("fc").get_weights()
    nodes.append(helper.make_node(
        "Gemm", ["flat", init("fc.w", k.T), init("fc.bias", bias)], ["fc"], name="fc", transB=1))
    nodes.append(helper.make_node("Softmax", ["fc"], ["posteriors"], name="softmax", axis=1))
    # Clip's bounds must be scalars.
    for t_ in inits:
        if t_.name in ("zero", "six"):
            t_.dims[:] = []
    graph = helper.make_graph(
        nodes, "small_sep_cnn",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 1, T, W])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, 5])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="scripts/make_onnx_golden.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main():
    model = keras_model()
    m = to_onnx(model)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "small_sep_cnn.onnx")
    onnx.save(m, path)
    sess = onnxruntime.InferenceSession(path)
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(3):
        x = rng.normal(0, 1, (1, T, W, 1)).astype(np.float32)
        keras_out = model(x, training=False).numpy().reshape(-1)
        ort_out = sess.run(None, {"features": x.transpose(0, 3, 1, 2)})[0].reshape(-1)
        assert np.abs(keras_out - ort_out).max() < 1e-5, (keras_out, ort_out)
        cases.append({
            "features": [round(float(v), 6) for v in x.reshape(-1)],
            "posteriors": [float(v) for v in keras_out],
        })
    with open(os.path.join(OUT, "small_sep_cnn.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "onnx": onnx.__version__,
                   "frames": T, "width": W, "cases": cases}, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
