//! One front-end hop: samples in -> one feature frame out, through `sepstream::audio::FeatureStream`.
//!
//! `cargo bench --bench frontend` measures, per hop (all buffers preallocated outside the timed loop):
//! - `frontend_hop/logmel40_16k`: 320 samples (20 ms) at 16 kHz -> one 40-band log-mel frame
//!   (window 640, FFT 1024, HTK);
//! - `frontend_hop/mfcc10_16k`: 160 samples (10 ms) at 16 kHz -> one 10-MFCC frame
//!   (window 480, FFT 512, Slaney, pre-emphasis);
//! - `frontend_hop/logmel40_48k_resampled`: 960 samples (20 ms) at 48 kHz, resampled to 16 kHz,
//!   -> one log-mel frame;
//! - `frontend_hop/naive_dft_logmel40`: its naive twin, the same frame with an O(n^2) DFT and a
//!   dense filterbank, to show what the planned real FFT buys.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sepstream::audio::{mel_band_edges, FeatureStream, FrontendConfig, MelScale};

fn signal(n: usize, rate: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 2900.0 * t).sin()
        })
        .collect()
}

fn bench_stream(c: &mut Criterion, name: &str, cfg: &FrontendConfig, rate: u32, block: usize) {
    let mut s = FeatureStream::new(cfg, rate).expect("valid config");
    let x = signal(rate as usize * 4, rate);
    // Warm up past the first window and the resampler delay.
    s.push(&x[..rate as usize], |_, _| {});
    let blocks: Vec<&[f32]> = x[rate as usize..].chunks_exact(block).collect();
    let mut k = 0usize;
    let mut g = c.benchmark_group("frontend_hop");
    g.throughput(Throughput::Elements(block as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut acc = 0.0f32;
            s.push(black_box(blocks[k % blocks.len()]), |t, f| {
                acc += f[0] + t as f32;
            });
            k += 1;
            black_box(acc)
        })
    });
    g.finish();
}

/// The naive twin: same frame definition with a direct DFT and a dense filterbank.
fn bench_naive(c: &mut Criterion) {
    let cfg = FrontendConfig::default();
    let n_fft = cfg.n_fft;
    let bins = n_fft / 2 + 1;
    let hann: Vec<f32> = (0..cfg.window)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / cfg.window as f32).cos())
        .collect();
    let edges = mel_band_edges(&cfg);
    let bin_hz = cfg.sample_rate as f64 / n_fft as f64;
    let mut fb = vec![0.0f32; cfg.n_mels * bins];
    for m in 0..cfg.n_mels {
        for k in 0..bins {
            let f = k as f64 * bin_hz;
            let w = ((f - edges[m]) / (edges[m + 1] - edges[m]))
                .min((edges[m + 2] - f) / (edges[m + 2] - edges[m + 1]))
                .max(0.0);
            fb[m * bins + k] = w as f32;
        }
    }
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..n_fft)
        .map(|i| {
            let a = 2.0 * std::f64::consts::PI * i as f64 / n_fft as f64;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip();
    let x = signal(cfg.window, cfg.sample_rate);
    let mut seg = vec![0.0f32; cfg.window];
    let mut power = vec![0.0f32; bins];
    let mut out = vec![0.0f32; cfg.n_mels];
    let mut g = c.benchmark_group("frontend_hop");
    g.throughput(Throughput::Elements(cfg.hop as u64));
    g.bench_function("naive_dft_logmel40", |b| {
        b.iter(|| {
            for ((s, v), h) in seg.iter_mut().zip(black_box(&x)).zip(&hann) {
                *s = v * h;
            }
            for (k, p) in power.iter_mut().enumerate() {
                let (mut re, mut im) = (0.0f32, 0.0f32);
                for (n, s) in seg.iter().enumerate() {
                    let idx = (k * n) % n_fft;
                    re += s * cos[idx];
                    im -= s * sin[idx];
                }
                *p = re * re + im * im;
            }
            for (m, o) in out.iter_mut().enumerate() {
                let e: f32 = fb[m * bins..(m + 1) * bins]
                    .iter()
                    .zip(&power)
                    .map(|(a, b)| a * b)
                    .sum();
                *o = e.max(cfg.log_floor).ln();
            }
            black_box(out[0])
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let logmel = FrontendConfig::default();
    bench_stream(c, "logmel40_16k", &logmel, 16000, 320);
    let mfcc = FrontendConfig {
        window: 480,
        hop: 160,
        n_fft: 512,
        mel_scale: MelScale::Slaney,
        preemphasis: Some(0.97),
        n_mfcc: Some(10),
        ..Default::default()
    };
    bench_stream(c, "mfcc10_16k", &mfcc, 16000, 160);
    bench_stream(c, "logmel40_48k_resampled", &logmel, 48000, 960);
    bench_naive(c);
}

criterion_group!(frontend, benches);
criterion_main!(frontend);
