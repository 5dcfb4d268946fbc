#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the repo's own small files.

spec_and_weights: every model spec in configs/ (alone: the target builds it with random weights),
depth_sectors.toml with its real 1 KB weights, and tiny one-layer specs with hand-made weights.
pipeline_config: configs/pipeline.toml. audio_reader: the golden test WAVs under 48 KB and three
16-sample WAVs (16-bit mono, 24-bit stereo, float mono). import_onnx: the ONNX golden test
model. import_tf_graph: the smallest Hello Edge graph (DS_CNN_S.pb, 120 KB) from ../shared when
it is there, and small GraphDefs made here (a Placeholder, Const, Conv2D chain).
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
MAX_SEED = 48 << 10


def spec_seed(spec: bytes, safetensors: bytes = b"") -> bytes:
    return struct.pack("<H", len(spec)) + spec + safetensors


def safetensors(tensors: dict) -> bytes:
    """tensors: name -> (shape, values); F32, little-endian, in name order."""
    header, data = {}, b""
    for name in sorted(tensors):
        shape, values = tensors[name]
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


# A minimal protobuf writer for the hand-made TensorFlow graphs below (field numbers from
# tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto).
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_bytes(num: int, data: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def tf_shape(dims) -> bytes:
    return b"".join(field_bytes(2, field_varint(1, d)) for d in dims)


def tf_attr(key: str, value: bytes) -> bytes:
    return field_bytes(5, field_bytes(1, key.encode()) + field_bytes(2, value))


def tf_node(name: str, op: str, inputs=(), attrs=b"") -> bytes:
    body = field_bytes(1, name.encode()) + field_bytes(2, op.encode())
    body += b"".join(field_bytes(3, i.encode()) for i in inputs)
    return field_bytes(1, body + attrs)


def tf_const(name: str, dims, values, dtype: int = 1) -> bytes:
    """dtype 1 = DT_FLOAT (tensor_content, little-endian), 3 = DT_INT32 (int_val)."""
    tensor = field_varint(1, dtype) + field_bytes(2, tf_shape(dims))
    if dtype == 1:
        tensor += field_bytes(4, struct.pack(f"<{len(values)}f", *values))
    else:
        tensor += field_bytes(7, b"".join(varint(v) for v in values))
    return tf_node(name, "Const", attrs=tf_attr("dtype", field_varint(6, dtype)) + tf_attr("value", field_bytes(8, tensor)))


def tf_list_ints(values) -> bytes:
    return field_bytes(1, field_bytes(3, b"".join(varint(v) for v in values)))


def tf_small_graph(depthwise: bool) -> bytes:
    """Placeholder [1, 8, 5, 1] -> Conv2D 3x3 (x4, SAME, stride 1x2) -> BiasAdd -> Relu
    -> Mean over time and width, or DepthwiseConv2dNative 3x1 (SAME) -> Relu6 -> AvgPool -> Reshape
    [1, -1]; then MatMul (x3) -> Softmax."""
    g = tf_node("input", "Placeholder", attrs=tf_attr("dtype", field_varint(6, 1)) + tf_attr("shape", field_bytes(7, tf_shape([1, 8, 5, 1]))))
    g += tf_const("w1", [3, 3, 1, 4], [0.05 * ((i * 7) % 11 - 5) for i in range(36)])
    conv = tf_attr("strides", tf_list_ints([1, 1, 2, 1])) + tf_attr("padding", field_bytes(2, b"SAME"))
    g += tf_node("conv1", "Conv2D", ["input", "w1"], conv)
    g += tf_const("b1", [4], [0.1, -0.1, 0.2, 0.0])
    g += tf_node("bias1", "BiasAdd", ["conv1", "b1"])
    g += tf_node("relu1", "Relu", ["bias1"])
    last, width = "relu1", 3
    if depthwise:
        g += tf_const("w2", [3, 1, 4, 1], [0.3, -0.2, 0.1, 0.4] * 3)
        dw = tf_attr("strides", tf_list_ints([1, 1, 1, 1])) + tf_attr("padding", field_bytes(2, b"SAME"))
        g += tf_node("dw2", "DepthwiseConv2dNative", ["relu1", "w2"], dw)
        g += tf_node("relu2", "Relu6", ["dw2"])
        last = "relu2"
    if depthwise:
        pool = tf_attr("ksize", tf_list_ints([1, 8, width, 1])) + tf_attr("strides", tf_list_ints([1, 1, 1, 1]))
        g += tf_node("pool", "AvgPool", [last], pool + tf_attr("padding", field_bytes(2, b"VALID")))
        g += tf_const("shape", [2], [1, -1], dtype=3)
        g += tf_node("flat", "Reshape", ["pool", "shape"])
    else:
        g += tf_const("axes", [2], [1, 2], dtype=3)
        g += tf_node("flat", "Mean", [last, "axes"])
    g += tf_const("fc_w", [4, 3], [0.1 * ((i * 5) % 13 - 6) for i in range(12)])
    g += tf_node("fc", "MatMul", ["flat", "fc_w"])
    g += tf_node("labels_softmax", "Softmax", ["fc"])
    return g


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main() -> None:
    n = 0
    for spec in sorted((ROOT / "configs").glob("*.toml")):
        text = spec.read_bytes()
        if b"[[layers]]" in text:
            write("spec_and_weights", f"spec-{spec.stem}", spec_seed(text))
            n += 1
        if b"[edges" in text or b"[capture" in text or spec.name == "pipeline.toml":
            write("pipeline_config", f"config-{spec.stem}", text)
    depth = (ROOT / "configs/depth_sectors.toml").read_bytes()
    weights = (ROOT / "assets/depth_sectors.safetensors").read_bytes()
    write("spec_and_weights", "weights-depth_sectors", spec_seed(depth, weights))
    head = b'name = "tiny"\n[input]\nwidth = 3\nchannels = 2\nframe_rate = 100.0\n'
    tiny = {
        "dense": (b'[[layers]]\nkind = "dense"\nunits = 2\n',
                  {"dense0.weight": ([2, 6], [0.1 * i for i in range(12)]), "dense0.bias": ([2], [0.5, -0.5])}),
        "pointwise": (b'[[layers]]\nkind = "pointwise"\nout_channels = 4\ngroups = 2\nactivation = "relu6"\n',
                      {"pointwise0.weight": ([4, 1], [1.0, -1.0, 2.0, 0.5]), "pointwise0.bias": ([4], [0.0] * 4)}),
        "depthwise": (b'[[layers]]\nkind = "depthwise1d"\nkernel = 3\ndilation = 2\ncentered = true\n'
                      b'[[layers]]\nkind = "avgpool"\nframes = 2\n[[layers]]\nkind = "softmax"\n',
                      {"depthwise1d0.weight": ([2, 3], [0.2] * 6), "depthwise1d0.bias": ([2], [0.1, 0.2])}),
    }
    for name, (layers, tensors) in tiny.items():
        write("spec_and_weights", f"tiny-{name}", spec_seed(head + layers, safetensors(tensors)))
        n += 1
    print(f"{n + 1} spec_and_weights seeds")

    for wav in sorted((ROOT / "crates/audio/tests/golden").glob("*.wav")):
        data = wav.read_bytes()
        if len(data) <= MAX_SEED:
            write("audio_reader", f"golden-{wav.stem}", data)
    for name, bits, channels in [("i16_mono", 16, 1), ("i24_stereo", 24, 2), ("f32_mono", 32, 1)]:
        block = channels * bits // 8
        frames = 16
        fmt = struct.pack("<HHIIHH", 3 if bits == 32 else 1, channels, 16000, 16000 * block, block, bits)
        data = bytes((i * 37) % 251 for i in range(frames * block))
        body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
        write("audio_reader", f"made-{name}", b"RIFF" + struct.pack("<I", len(body)) + body)
    # The compressed samples, cut to their first MAX_SEED bytes (headers and first frames).
    for f in sorted((ROOT / "assets/formats").iterdir()):
        write("audio_reader", f"format-{f.name}", f.read_bytes()[:MAX_SEED])

    for onnx in sorted((ROOT / "crates/import/tests/golden").glob("*.onnx")):
        write("import_onnx", f"golden-{onnx.stem}", onnx.read_bytes())
    write("import_tf_graph", "made-conv", tf_small_graph(False))
    write("import_tf_graph", "made-conv-depthwise", tf_small_graph(True))
    shared = ROOT.parent / "shared" / "models" / "hello_edge" / "DS_CNN_S.pb"
    if shared.exists():
        write("import_tf_graph", "hello_edge-DS_CNN_S", shared.read_bytes())
    else:
        print(f"import_tf_graph: {shared} not found; seeding with the made graphs only")


if __name__ == "__main__":
    main()
