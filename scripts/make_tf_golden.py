#!/usr/bin/env python3
"""Golden outputs of the Hello Edge DS-CNN graphs, computed by TensorFlow itself.

Runs each frozen graph in ../shared/models/hello_edge (tf.compat.v1, the graph as shipped, one
clip at a time) and writes, for a few clips of ../shared/data/speech_commands, the graph's own
MFCC features (node `Mfcc`) and posteriors (`labels_softmax`) to
crates/import/tests/golden/hello_edge_tf.json. With --accuracy it also classifies every clip of
the folder and prints each model's accuracy (the argmax of `labels_softmax`).

Environment (pinned): Python 3.11, `pip install tensorflow-cpu==2.21.0` (numpy 2.4.6). Run with
`nice`; CI does not need Python (the outputs are committed).
"""

import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MODELS = os.path.join(SHARED, "models", "hello_edge")
DATA = os.path.join(SHARED, "data", "speech_commands")
OUT = os.path.join(ROOT, "crates", "import", "tests", "golden", "hello_edge_tf.json")

# A few clips: several keywords, an unknown word, silence, and the folder's shortest clips.
CLIPS = [
    "yes/022cd682_nohash_0.wav",
    "go/022cd682_nohash_1.wav",
    "_unknown_/backward_0c540988_nohash_0.wav",
    "_silence_/1024.wav",
]


def labels():
    with open(os.path.join(MODELS, "labels.txt")) as f:
        return [line.strip() for line in f if line.strip()]


def load_graph(path):
    graph = tf.Graph()
    with graph.as_default():
        gd = tf.compat.v1.GraphDef()
        with open(path, "rb") as f:
            gd.ParseFromString(f.read())
        tf.import_graph_def(gd, name="")
    return graph


def all_clips():
    out = []
    for label in sorted(os.listdir(DATA)):
        d = os.path.join(DATA, label)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(".wav"):
                out.append((label, f"{label}/{name}"))
    return out


def pick_clips():
    """CLIPS that exist, else the first clip of four labels; plus the two shortest clips."""
    clips = [c for c in CLIPS if os.path.exists(os.path.join(DATA, c))]
    everything = all_clips()
    if len(clips) < len(CLIPS):
        seen = set()
        for label, rel in everything:
            if label not in seen and len(clips) < len(CLIPS):
                seen.add(label)
                clips.append(rel)
    sizes = sorted(everything, key=lambda lr: os.path.getsize(os.path.join(DATA, lr[1])))
    for _, rel in sizes[:2]:
        if rel not in clips:
            clips.append(rel)
    return clips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accuracy", action="store_true", help="also classify the whole folder")
    args = ap.parse_args()
    names = labels()
    clips = pick_clips()
    result = {
        "tensorflow": tf.__version__,
        "labels": names,
        "clips": [],
    }
    per_clip = {c: {"clip": c} for c in clips}
    for model in ["DS_CNN_S", "DS_CNN_M", "DS_CNN_L"]:
        graph = load_graph(os.path.join(MODELS, model + ".pb"))
        with tf.compat.v1.Session(graph=graph) as sess:
            for c in clips:
                wav = open(os.path.join(DATA, c), "rb").read()
                mfcc, post = sess.run(["Mfcc:0", "labels_softmax:0"], {"wav_data:0": wav})
                per_clip[c]["frames"] = int(mfcc.shape[1])
                per_clip[c]["mfcc"] = [round(float(v), 6) for v in mfcc.reshape(-1)]
                per_clip[c][model] = [float(v) for v in post.reshape(-1)]
            if args.accuracy:
                correct = total = 0
                for label, rel in all_clips():
                    wav = open(os.path.join(DATA, rel), "rb").read()
                    post = sess.run("labels_softmax:0", {"wav_data:0": wav})
                    correct += int(names[int(np.argmax(post))] == label)
                    total += 1
                print(f"{model}: accuracy {correct / total:.4f} ({correct} of {total} clips)")
                result.setdefault("accuracy", {})[model] = {"correct": correct, "clips": total}
    result["clips"] = [per_clip[c] for c in clips]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
