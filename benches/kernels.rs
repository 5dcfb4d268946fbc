//! Each kernel against its naive twin, the separable block against the standard convolution
//! of the same shape, and a roofline: achieved GFLOP/s against this core's measured FMA peak.
//!
//! `cargo bench --bench kernels` runs, per shape, three variants of every kernel:
//! - `naive`: the textbook loop over the reference weight layout (what one writes first);
//! - `scalar`: the portable packed kernel (`compute_with(Isa::Scalar, ..)`);
//! - `avx2`: the AVX2 + FMA register-blocked kernel (`Isa::Avx2Fma`, when the CPU has it).
//!
//! and then prints: the single-core peak (an FMA loop with 12 independent 8-lane chains),
//! each kernel's GFLOP/s and fraction of peak (bytes/s too for depthwise, which is memory
//! bound), and the measured separable/standard time ratio against the FLOP ratio
//! 1/C_out + 1/k^2.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use sepstream_nn::layers::History;
use sepstream_nn::layers::{Conv, ConvGeometry, Depthwise, Isa, Pointwise, Separable};
use sepstream_nn::{Activation, FrameShape};

struct Lcg(u64);
impl Lcg {
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }
}

/// A convolution shape: input width, C_in, C_out, kernel (time, width), stride, dilation.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    width: usize,
    ci: usize,
    co: usize,
    k: (usize, usize),
    s: (usize, usize),
    d: usize,
}

impl Shape {
    fn geom(&self) -> ConvGeometry {
        ConvGeometry::new(
            FrameShape::new(self.width, self.ci),
            self.k,
            self.s,
            self.d,
            false,
        )
    }
    /// Input columns read per output frame, summed over positions and kernel columns
    /// (zero-padded columns are skipped by every kernel, so they are not counted).
    fn col_taps(&self) -> usize {
        let g = self.geom();
        (0..g.out_width)
            .map(|p| {
                (0..self.k.1)
                    .filter(|&y| {
                        (p * self.s.1 + y)
                            .checked_sub(g.pad_left())
                            .is_some_and(|c| c < self.width)
                    })
                    .count()
            })
            .sum()
    }
}

// The DS-CNN-S shapes (configs/ds_cnn_s.toml), the 1D time-channel shape (configs/tc_sep1d.toml)
// and the seed's 192 -> 384, k = 3 case on a 16-wide row.
const DS_BLOCK: Shape = Shape {
    name: "dscnn_w5_64x64_k3x3",
    width: 5,
    ci: 64,
    co: 64,
    k: (3, 3),
    s: (1, 1),
    d: 1,
};
const DS_CONV1: Shape = Shape {
    name: "dscnn_conv1_w10_1x64_k10x4_s2",
    width: 10,
    ci: 1,
    co: 64,
    k: (10, 4),
    s: (2, 2),
    d: 1,
};
const TC_BLOCK: Shape = Shape {
    name: "tc1d_64x64_k9",
    width: 1,
    ci: 64,
    co: 64,
    k: (9, 1),
    s: (1, 1),
    d: 1,
};
const SEED: Shape = Shape {
    name: "seed_w16_192x384_k3x3",
    width: 16,
    ci: 192,
    co: 384,
    k: (3, 3),
    s: (1, 1),
    d: 1,
};

fn variants() -> Vec<(&'static str, Option<Isa>)> {
    let mut v = vec![("naive", None), ("scalar", Some(Isa::Scalar))];
    if Isa::Avx2Fma.is_supported() {
        v.push(("avx2", Some(Isa::Avx2Fma)));
    }
    v
}

/// A history ring filled with random past frames.
fn history(g: &ConvGeometry, rng: &mut Lcg) -> History {
    let mut h = History::new(g.history_frames(), g.input.len());
    for _ in 0..g.history_frames() {
        h.push(&rng.vec(g.input.len()));
    }
    h
}

/// The frame at tap x (x = k_t - 1 is `input`).
fn tap_frame<'a>(g: &ConvGeometry, h: &'a History, input: &'a [f32], x: usize) -> &'a [f32] {
    let lag = (g.k_t - 1 - x) * g.dilation;
    if lag == 0 {
        input
    } else {
        h.lag(lag)
    }
}

fn in_col(g: &ConvGeometry, p: usize, y: usize) -> Option<usize> {
    (p * g.s_w + y)
        .checked_sub(g.pad_left())
        .filter(|&c| c < g.input.width)
}

/// Naive twin of the standard convolution: reference layout [C_out][C_in][k_t][k_w],
/// one dot product per output value.
fn naive_conv(c: &Conv, h: &History, input: &[f32], out: &mut [f32]) {
    let g = &c.geom();
    let (ci, co) = (g.input.channels, c.out_channels());
    for p in 0..g.out_width {
        for o in 0..co {
            let mut acc = c.bias()[o];
            for i in 0..ci {
                for x in 0..g.k_t {
                    let row = tap_frame(g, h, input, x);
                    for y in 0..g.k_w {
                        if let Some(col) = in_col(g, p, y) {
                            acc += c.weight()[((o * ci + i) * g.k_t + x) * g.k_w + y]
                                * row[col * ci + i];
                        }
                    }
                }
            }
            out[p * co + o] = c.activation().apply(acc);
        }
    }
}

/// Naive twin of the depthwise convolution (reference layout [C][k_t][k_w]).
fn naive_depthwise(d: &Depthwise, h: &History, input: &[f32], out: &mut [f32]) {
    let g = &d.geom();
    let c = g.input.channels;
    for p in 0..g.out_width {
        for ch in 0..c {
            let mut acc = d.bias()[ch];
            for x in 0..g.k_t {
                let row = tap_frame(g, h, input, x);
                for y in 0..g.k_w {
                    if let Some(col) = in_col(g, p, y) {
                        acc += d.weight()[(ch * g.k_t + x) * g.k_w + y] * row[col * c + ch];
                    }
                }
            }
            out[p * c + ch] = d.activation().apply(acc);
        }
    }
}

/// Naive twin of the pointwise convolution (reference layout [C_out][C_in]).
fn naive_pointwise(pw: &Pointwise, input: &[f32], out: &mut [f32]) {
    let (ci, co) = (pw.input().channels, pw.out_channels());
    for p in 0..pw.input().width {
        for o in 0..co {
            let mut acc = pw.bias()[o];
            for i in 0..ci {
                acc += pw.weight()[o * ci + i] * input[p * ci + i];
            }
            out[p * co + o] = pw.activation().apply(acc);
        }
    }
}

/// What the roofline report needs about one benchmarked kernel.
struct Entry {
    group: String,
    kind: &'static str,
    flops: f64,
    bytes: f64,
}

fn bench_shape(c: &mut criterion::Criterion, sh: Shape, entries: &mut Vec<Entry>, std_conv: bool) {
    let mut rng = Lcg(sh.name.len() as u64 + 11);
    let g = sh.geom();
    let (kt, kw) = sh.k;
    let hist = history(&g, &mut rng);
    let input = rng.vec(g.input.len());
    let taps = sh.col_taps() as f64;

    let dw = Depthwise::new(
        g.clone(),
        rng.vec(sh.ci * kt * kw),
        rng.vec(sh.ci),
        Activation::Relu,
    );
    let pw = Pointwise::new(
        dw.output(),
        sh.co,
        rng.vec(sh.ci * sh.co),
        rng.vec(sh.co),
        Activation::Relu,
    );
    let sep = Separable::new(dw.clone(), pw.clone());
    let mid = rng.vec(dw.output().len());
    let mut dw_out = vec![0.0; dw.output().len()];
    let mut pw_out = vec![0.0; pw.output().len()];
    let wout = g.out_width as f64;
    let f4 = 4.0;
    let dw_flops = 2.0 * (kt as f64) * taps * sh.ci as f64;
    let pw_flops = 2.0 * wout * (sh.ci * sh.co) as f64;
    let conv_flops = 2.0 * (kt as f64) * taps * (sh.ci * sh.co) as f64;
    // Depthwise bytes: the k_t input frames, the filters and bias, the output frame.
    let dw_bytes =
        f4 * ((kt * g.input.len()) as f64 + (sh.ci * (kt * kw + 1)) as f64 + wout * sh.ci as f64);
    let pw_bytes = f4 * (wout * (sh.ci + sh.co) as f64 + (sh.ci * sh.co + sh.co) as f64);
    let conv_bytes = f4
        * ((kt * g.input.len()) as f64
            + (sh.ci * sh.co * kt * kw + sh.co) as f64
            + wout * sh.co as f64);

    if sh.ci > 1 {
        let name = format!("depthwise/{}", sh.name);
        let mut grp = c.benchmark_group(&name);
        for (v, isa) in variants() {
            grp.bench_function(v, |b| match isa {
                None => b.iter(|| naive_depthwise(&dw, &hist, black_box(&input), &mut dw_out)),
                Some(isa) => b.iter(|| dw.compute_with(isa, &hist, black_box(&input), &mut dw_out)),
            });
        }
        grp.finish();
        entries.push(Entry {
            group: name,
            kind: "depthwise",
            flops: dw_flops,
            bytes: dw_bytes,
        });

        let name = format!("pointwise/{}", sh.name);
        let mut grp = c.benchmark_group(&name);
        for (v, isa) in variants() {
            grp.bench_function(v, |b| match isa {
                None => b.iter(|| naive_pointwise(&pw, black_box(&mid), &mut pw_out)),
                Some(isa) => b.iter(|| pw.compute_with(isa, black_box(&mid), &mut pw_out)),
            });
        }
        grp.finish();
        entries.push(Entry {
            group: name,
            kind: "pointwise",
            flops: pw_flops,
            bytes: pw_bytes,
        });

        let name = format!("separable/{}", sh.name);
        let mut grp = c.benchmark_group(&name);
        let mut scratch = vec![0.0; dw.output().len()];
        for (v, isa) in variants() {
            grp.bench_function(v, |b| match isa {
                None => b.iter(|| {
                    naive_depthwise(&dw, &hist, black_box(&input), &mut scratch);
                    naive_pointwise(&pw, &scratch, &mut pw_out)
                }),
                Some(isa) => b.iter(|| {
                    sep.compute_with(isa, &hist, black_box(&input), &mut scratch, &mut pw_out)
                }),
            });
        }
        grp.finish();
        entries.push(Entry {
            group: name,
            kind: "separable",
            flops: dw_flops + pw_flops,
            bytes: dw_bytes + pw_bytes,
        });
    }

    if std_conv {
        let conv = Conv::new(
            g.clone(),
            sh.co,
            rng.vec(sh.co * sh.ci * kt * kw),
            rng.vec(sh.co),
            Activation::Relu,
        );
        let mut out = vec![0.0; conv.output().len()];
        let name = format!("standard_conv/{}", sh.name);
        let mut grp = c.benchmark_group(&name);
        for (v, isa) in variants() {
            grp.bench_function(v, |b| match isa {
                None => b.iter(|| naive_conv(&conv, &hist, black_box(&input), &mut out)),
                Some(isa) => b.iter(|| conv.compute_with(isa, &hist, black_box(&input), &mut out)),
            });
        }
        grp.finish();
        entries.push(Entry {
            group: name,
            kind: "standard_conv",
            flops: conv_flops,
            bytes: conv_bytes,
        });
    }
}

/// Single-core peak: 12 independent chains of 8-lane FMAs (enough to cover the FMA latency on
/// two pipes), best of several runs. FLOP/s counts 2 per lane per FMA.
fn peak_flops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2Fma.is_supported() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma_loop(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mut acc = [_mm256_set1_ps(0.0); 12];
            let a = _mm256_set1_ps(0.999_999);
            let b = _mm256_set1_ps(1e-7);
            for _ in 0..iters {
                for r in acc.iter_mut() {
                    *r = _mm256_fmadd_ps(*r, a, b);
                }
            }
            let mut s = _mm256_setzero_ps();
            for r in acc {
                s = _mm256_add_ps(s, r);
            }
            let mut lanes = [0.0f32; 8];
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
            lanes.iter().sum()
        }
        // Many short runs (about 2 ms each), the best: on a shared core, the least disturbed.
        let iters = 400_000u64;
        let mut best = f64::MAX;
        for _ in 0..300 {
            let t = Instant::now();
            // SAFETY: AVX2 and FMA checked above.
            black_box(unsafe { fma_loop(black_box(iters)) });
            best = best.min(t.elapsed().as_secs_f64());
        }
        return Some(iters as f64 * 12.0 * 8.0 * 2.0 / best);
    }
    None
}

fn report(entries: &[Entry], since: SystemTime) {
    let peak = peak_flops();
    println!();
    match peak {
        Some(p) => println!(
            "single-core peak (AVX2 FMA loop, 12 chains x 8 lanes, best of 300 runs of 2 ms): {:.1} GFLOP/s",
            p / 1e9
        ),
        None => println!("single-core peak: no AVX2+FMA on this CPU, not measured"),
    }
    println!("times below: the fastest criterion sample of each benchmark (the least disturbed by other load)");
    println!(
        "{:<46} {:>8} {:>11} {:>11} {:>11} {:>9} {:>8} {:>9} {:>8}",
        "kernel", "MFLOP", "naive", "scalar", "avx2", "x naive", "GFLOP/s", "of peak", "GB/s"
    );
    for e in entries {
        let get = |id| common::best_ns(&e.group, id, since);
        let (naive, scalar, avx) = (get("naive"), get("scalar"), get("avx2"));
        let best = avx.or(scalar);
        let f = |t: Option<f64>| t.map_or("-".to_string(), common::fmt_ns);
        let (gf, frac, gbs, speedup) = match best {
            Some(t) => (
                format!("{:.1}", e.flops / t),
                peak.map_or("-".into(), |p| {
                    format!("{:.0}%", 100.0 * e.flops / t / (p / 1e9))
                }),
                format!("{:.1}", e.bytes / t),
                naive.map_or("-".into(), |n| format!("{:.1}x", n / t)),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<46} {:>8.3} {:>11} {:>11} {:>11} {:>9} {:>8} {:>9} {:>8}",
            e.group,
            e.flops / 1e6,
            f(naive),
            f(scalar),
            f(avx),
            speedup,
            gf,
            frac,
            if e.kind == "depthwise" {
                gbs
            } else {
                "".into()
            }
        );
    }
    println!();
    for sh in [DS_BLOCK, SEED] {
        let best = |kind: &str| {
            let g = format!("{kind}/{}", sh.name);
            common::best_ns(&g, "avx2", since).or_else(|| common::best_ns(&g, "scalar", since))
        };
        let (k2, co) = ((sh.k.0 * sh.k.1) as f64, sh.co as f64);
        let flop_ratio = 1.0 / co + 1.0 / k2;
        if let (Some(sep), Some(std)) = (best("separable"), best("standard_conv")) {
            let measured = sep / std;
            println!(
                "separable vs standard {} -> {}, k={}x{}, width {}: time ratio {:.4} (sep {} / std {}), FLOP ratio 1/C_out + 1/k^2 = {:.4}, measured/FLOP = {:.2} ({})",
                sh.ci, sh.co, sh.k.0, sh.k.1, sh.width, measured, common::fmt_ns(sep), common::fmt_ns(std),
                flop_ratio, measured / flop_ratio,
                if (1.0 / 1.5..=1.5).contains(&(measured / flop_ratio)) { "within 1.5x" } else { "NOT within 1.5x" }
            );
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut entries = Vec::new();
    bench_shape(&mut c, DS_BLOCK, &mut entries, true);
    bench_shape(&mut c, TC_BLOCK, &mut entries, false);
    bench_shape(&mut c, DS_CONV1, &mut entries, true);
    bench_shape(&mut c, SEED, &mut entries, true);
    c.final_summary();
    report(&entries, since);
}
