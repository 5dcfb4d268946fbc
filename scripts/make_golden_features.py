#!/usr/bin/env python3
"""Make the golden feature files that crates/audio/tests/golden.rs checks the Rust front end against.

An independent implementation of the front-end definition documented on
`sepstream_audio::FrontendConfig`, in float64, with well-known libraries (pinned):

    pip install numpy==2.4.6 scipy==1.17.1 librosa==0.11.0

- WAV decoding: Python's standard `wave` module (16-bit PCM / 32768), not hound.
- STFT: numpy.fft.rfft of the periodic Hann window (scipy.signal.get_window('hann', N)).
- Mel filterbank: librosa.filters.mel(htk=True, norm=None) for "htk",
  librosa.filters.mel(htk=False, norm="slaney") for "slaney".
- MFCC: scipy.fft.dct(type=2, norm="ortho").

The test WAVs are made here too if missing (espeak-ng and sox, Debian packages), small, 16 kHz.
Usage (from the repo root):  python3 scripts/make_golden_features.py
Output in crates/audio/tests/golden/: NAME.wav, NAME.toml (the [frontend] table) and NAME.f32
(little-endian float32, n_frames * feature_len values, frame-major).
CI does not need Python: the outputs are committed.
"""
import os
import subprocess
import sys
import wave

import librosa
import numpy as np
import scipy.fft
import scipy.signal

PINNED = {"numpy": "2.4.6", "scipy": "1.17.1", "librosa": "0.11.0"}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "audio", "tests", "golden")

CASES = [
    # name, how to make the wav, frontend table
    ("yes_htk_logmel",
     ["espeak-ng", "-v", "en-us", "-s", "150", "-w", "{tmp}", "yes"],
     dict(sample_rate=16000, window=640, hop=320, n_fft=1024, n_mels=40, f_min=20.0,
          mel_scale="htk", log_floor=1e-6)),
    ("stopgo_slaney_mfcc",
     ["espeak-ng", "-v", "en-gb", "-s", "170", "-w", "{tmp}", "stop, go"],
     dict(sample_rate=16000, window=480, hop=160, n_fft=512, n_mels=40, f_min=20.0,
          f_max=7600.0, mel_scale="slaney", log_floor=1e-6, preemphasis=0.97, n_mfcc=10)),
    ("chirp_htk_norm",
     ["sox", "-n", "-r", "16000", "-b", "16", "-c", "1", "{tmp}",
      "synth", "0.8", "sine", "100-7000", "vol", "0.5"],
     dict(sample_rate=16000, window=400, hop=160, n_fft=640, n_mels=32, f_min=60.0,
          f_max=7000.0, mel_scale="htk", log_floor=1e-5, n_mfcc=13,
          mean=[float(v) for v in np.linspace(-5.0, 1.0, 13)],
          std=[float(v) for v in np.linspace(1.5, 4.0, 13)])),
]


def make_wav(name, cmd):
    path = os.path.join(OUT, name + ".wav")
    if os.path.exists(path):
        return path
    tmp = path + ".tmp.wav"
    subprocess.run([c.replace("{tmp}", tmp) for c in cmd], check=True)
    # To 16 kHz, 16-bit, mono.
    subprocess.run(["sox", tmp, "-r", "16000", "-b", "16", "-c", "1", path], check=True)
    os.remove(tmp)
    return path


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return x, rate


def features(x, c):
    sr, win, hop, n_fft = c["sample_rate"], c["window"], c["hop"], c["n_fft"]
    if c.get("preemphasis") is not None:
        x = x - c["preemphasis"] * np.concatenate([[0.0], x[:-1]])
    n_frames = 0 if len(x) < win else (len(x) - win) // hop + 1
    hann = scipy.signal.get_window("hann", win, fftbins=True)
    fb = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=c["n_mels"], fmin=c["f_min"], fmax=c.get("f_max", sr / 2),
        htk=(c["mel_scale"] == "htk"), norm=(None if c["mel_scale"] == "htk" else "slaney"),
        dtype=np.float64)
    out = []
    for i in range(n_frames):
        seg = x[i * hop:i * hop + win] * hann
        spec = np.fft.rfft(seg, n=n_fft)
        power = spec.real ** 2 + spec.imag ** 2
        logmel = np.log(np.maximum(fb @ power, c["log_floor"]))
        f = logmel
        if c.get("n_mfcc") is not None:
            f = scipy.fft.dct(logmel, type=2, norm="ortho")[: c["n_mfcc"]]
        if c.get("mean") is not None:
            f = f - np.asarray(c["mean"])
        if c.get("std") is not None:
            f = f / np.asarray(c["std"])
        out.append(f)
    return np.asarray(out)


def toml_value(v):
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, list):
        return "[" + ", ".join(repr(float(e)) for e in v) + "]"
    return repr(v)


def main():
    for mod, ver in PINNED.items():
        have = __import__(mod).__version__
        if have != ver:
            print(f"warning: {mod} {have} installed, golden files were made with {ver}", file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    for name, cmd, cfg in CASES:
        path = make_wav(name, cmd)
        x, rate = read_wav16(path)
        assert rate == cfg["sample_rate"]
        f = features(x, cfg)
        with open(os.path.join(OUT, name + ".toml"), "w") as fh:
            fh.write("# [frontend] table used by scripts/make_golden_features.py for %s.wav\n" % name)
            for k, v in cfg.items():
                fh.write("%s = %s\n" % (k, toml_value(v)))
        f.astype("<f4").tofile(os.path.join(OUT, name + ".f32"))
        print(f"{name}: {len(x)} samples -> {f.shape[0]} frames x {f.shape[1]} features, "
              f"range [{f.min():.3f}, {f.max():.3f}]")


if __name__ == "__main__":
    main()
