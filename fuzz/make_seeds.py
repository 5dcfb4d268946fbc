#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the repo's own small files.

spec_and_weights: every model spec in configs/ (alone: the target builds it with random weights),
depth_sectors.toml with its real 1 KB weights, and tiny one-layer specs with hand-made weights.
pipeline_config: configs/pipeline.toml. audio_reader: the golden test WAVs under 48 KB and three
16-sample WAVs (16-bit mono, 24-bit stereo, float mono).
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


if __name__ == "__main__":
    main()
