//! Every kernel variant (`Isa`) against the portable scalar reference, on odd sizes: channel
//! counts that are not multiples of the 8-lane vectors, widths that leave every position-tile
//! remainder, strides, dilations and activations. Also checks the scalar reference against the
//! offline oracle on the same frames, so the chain variant -> scalar -> oracle is closed.

use sepstream_nn::layers::History;
use sepstream_nn::layers::{Conv, ConvGeometry, Depthwise, Isa, Pointwise, Separable};
use sepstream_nn::{Activation, FrameShape};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = 1e-5 * (1.0 + x.abs().max(y.abs()));
        assert!((x - y).abs() <= tol, "{what}: value {i}: {x} vs {y}");
    }
}

const WIDTHS: [usize; 7] = [1, 2, 3, 4, 5, 7, 13];
const CHANNELS: [usize; 7] = [1, 3, 7, 8, 9, 17, 67];
const ACTS: [Activation; 3] = [Activation::Identity, Activation::Relu, Activation::Relu6];

#[test]
fn avx2_variant_is_reported_consistently() {
    assert!(Isa::supported().contains(&Isa::Scalar));
    assert_eq!(
        Isa::supported().contains(&Isa::Avx2Fma),
        Isa::Avx2Fma.is_supported()
    );
    assert!(Isa::best().is_supported());
}

/// Every kernel variant of `pw` on `x` gives `reference`.
fn pointwise_variants_equal(pw: &Pointwise, x: &[f32], reference: &[f32], what: &str) {
    for isa in Isa::supported() {
        let mut out = vec![f32::NAN; reference.len()];
        pw.compute_with(isa, x, &mut out);
        close(&out, reference, &format!("pointwise {isa:?} {what}"));
    }
}

#[test]
fn pointwise_variants_equal_scalar_and_oracle_on_odd_sizes() {
    let mut rng = Lcg(1);
    for (n, &w) in WIDTHS.iter().enumerate() {
        for &ci in &CHANNELS {
            for &co in &CHANNELS {
                let act = ACTS[(n + ci + co) % 3];
                let input = FrameShape::new(w, ci);
                let pw = Pointwise::new(input, co, rng.vec(ci * co), rng.vec(co), act);
                let x = rng.vec(w * ci);
                let mut reference = vec![f32::NAN; w * co];
                pw.compute_with(Isa::Scalar, &x, &mut reference);
                close(&reference, &pw.forward(&x, 1), "pointwise scalar vs oracle");
                pointwise_variants_equal(&pw, &x, &reference, &format!("w{w} {ci}->{co}"));
            }
        }
    }
}

#[test]
fn grouped_pointwise_equals_its_dense_matrix_in_every_variant() {
    let mut rng = Lcg(7);
    // (groups, input channels per group, output channels per group): group blocks that are
    // and are not multiples of the 8-lane vectors, and the shipped ensemble's 5 x 64.
    let cases = [
        (2, 3, 5),
        (3, 8, 8),
        (4, 1, 9),
        (5, 64, 64),
        (2, 17, 24),
        (1, 7, 7),
    ];
    for (n, &(groups, cig, cog)) in cases.iter().enumerate() {
        for &w in &WIDTHS {
            let (ci, co) = (groups * cig, groups * cog);
            let act = ACTS[(n + w) % 3];
            let input = FrameShape::new(w, ci);
            let pw = Pointwise::grouped(input, co, groups, rng.vec(co * cig), rng.vec(co), act);
            let dense = Pointwise::new(input, co, pw.dense_weight(), pw.bias().to_vec(), act);
            // The dense matrix has zeros exactly off the group blocks.
            let dw = pw.dense_weight();
            for o in 0..co {
                for i in 0..ci {
                    if i / cig != o / cog {
                        assert_eq!(dw[o * ci + i], 0.0, "off-block weight {o},{i}");
                    }
                }
            }
            let x = rng.vec(w * ci);
            let mut reference = vec![f32::NAN; w * co];
            dense.compute_with(Isa::Scalar, &x, &mut reference);
            close(
                &pw.forward(&x, 1),
                &reference,
                &format!("grouped oracle g{groups} w{w} {ci}->{co}"),
            );
            let what = format!("grouped g{groups} w{w} {ci}->{co}");
            pointwise_variants_equal(&pw, &x, &reference, &what);
        }
    }
}

/// Streams `frames` through a kernel with a history ring and checks every variant at every
/// frame against the scalar reference; returns the scalar outputs (emitted on stride).
fn run_variants(
    g: &ConvGeometry,
    frames: &[Vec<f32>],
    out_len: usize,
    compute: impl Fn(Isa, &History, &[f32], &mut [f32]),
    what: &str,
) -> Vec<f32> {
    let mut hist = History::new(g.history_frames(), g.input.len());
    let mut all = Vec::new();
    for (t, f) in frames.iter().enumerate() {
        if t % g.s_t == 0 {
            let mut reference = vec![f32::NAN; out_len];
            compute(Isa::Scalar, &hist, f, &mut reference);
            for isa in Isa::supported() {
                let mut out = vec![f32::NAN; out_len];
                compute(isa, &hist, f, &mut out);
                close(&out, &reference, &format!("{what} {isa:?} frame {t}"));
            }
            all.extend_from_slice(&reference);
        }
        hist.push(f);
    }
    all
}

#[test]
fn depthwise_variants_equal_scalar_and_oracle_on_odd_sizes() {
    let mut rng = Lcg(2);
    let geoms = [
        ((3, 3), (1, 1), 1),
        ((1, 1), (1, 1), 1),
        ((5, 1), (2, 1), 2),
        ((2, 4), (1, 2), 3),
    ];
    for &w in &WIDTHS {
        for &c in &CHANNELS {
            for (n, &(k, s, d)) in geoms.iter().enumerate() {
                let g = ConvGeometry::new(FrameShape::new(w, c), k, s, d, false);
                let dw = Depthwise::new(g.clone(), rng.vec(c * k.0 * k.1), rng.vec(c), ACTS[n % 3]);
                let t = 7;
                let frames: Vec<Vec<f32>> = (0..t).map(|_| rng.vec(w * c)).collect();
                let out_len = g.out_width * c;
                let what = format!("depthwise w{w} c{c} k{k:?} s{s:?} d{d}");
                let streamed = run_variants(
                    &g,
                    &frames,
                    out_len,
                    |i, h, x, o| dw.compute_with(i, h, x, o),
                    &what,
                );
                close(&streamed, &dw.forward(&frames.concat(), t), &what);
            }
        }
    }
}

#[test]
fn conv_variants_equal_scalar_and_oracle_on_odd_sizes() {
    let mut rng = Lcg(3);
    let geoms = [
        ((3, 3), (1, 1), 1),
        ((10, 4), (2, 2), 1),
        ((3, 1), (1, 1), 2),
        ((2, 5), (1, 3), 1),
    ];
    for &w in &[1usize, 3, 5, 10, 13] {
        for &(ci, co) in &[(1, 9), (3, 7), (7, 17), (9, 8), (17, 67), (1, 64)] {
            for (n, &(k, s, d)) in geoms.iter().enumerate() {
                let g = ConvGeometry::new(FrameShape::new(w, ci), k, s, d, false);
                let conv = Conv::new(
                    g.clone(),
                    co,
                    rng.vec(co * ci * k.0 * k.1),
                    rng.vec(co),
                    ACTS[n % 3],
                );
                let t = 12;
                let frames: Vec<Vec<f32>> = (0..t).map(|_| rng.vec(w * ci)).collect();
                let out_len = g.out_width * co;
                let what = format!("conv w{w} {ci}->{co} k{k:?} s{s:?} d{d}");
                let streamed = run_variants(
                    &g,
                    &frames,
                    out_len,
                    |i, h, x, o| conv.compute_with(i, h, x, o),
                    &what,
                );
                close(&streamed, &conv.forward(&frames.concat(), t), &what);
            }
        }
    }
}

#[test]
fn fused_separable_variants_equal_scalar_and_oracle_on_odd_sizes() {
    let mut rng = Lcg(4);
    for &w in &WIDTHS {
        for &(ci, co) in &[(1, 1), (3, 5), (9, 17), (17, 9), (64, 64), (67, 33)] {
            let g = ConvGeometry::new(FrameShape::new(w, ci), (3, 3), (1, 1), 1, false);
            let dw = Depthwise::new(g.clone(), rng.vec(ci * 9), rng.vec(ci), Activation::Relu);
            let pw = Pointwise::new(
                dw.output(),
                co,
                rng.vec(ci * co),
                rng.vec(co),
                Activation::Relu,
            );
            let sep = Separable::new(dw, pw);
            let t = 5;
            let frames: Vec<Vec<f32>> = (0..t).map(|_| rng.vec(w * ci)).collect();
            let mut scratch = vec![0.0; w * ci];
            let what = format!("separable w{w} {ci}->{co}");
            let cell = std::cell::RefCell::new(&mut scratch);
            let streamed = run_variants(
                &g,
                &frames,
                w * co,
                |i, h, x, o| sep.compute_with(i, h, x, &mut cell.borrow_mut(), o),
                &what,
            );
            close(&streamed, &sep.forward(&frames.concat(), t), &what);
        }
    }
}
