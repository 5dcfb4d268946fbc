//! The AVX2 + FMA kernels of the convolutions. Every function requires a CPU with both features.

use std::arch::x86_64::*;

/// `out[c] += a[c] * k[c]` over the common length, 8 lanes at a time.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn fmadd(out: &mut [f32], a: &[f32], k: &[f32]) {
    let n = out.len().min(a.len()).min(k.len());
    let (o, a, k) = (out.as_mut_ptr(), a.as_ptr(), k.as_ptr());
    let mut c = 0;
    // SAFETY: c + 8 <= n for every vector access, c < n for the scalar tail.
    unsafe {
        while c + 8 <= n {
            let acc = _mm256_loadu_ps(o.add(c));
            let r = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(c)), _mm256_loadu_ps(k.add(c)), acc);
            _mm256_storeu_ps(o.add(c), r);
            c += 8;
        }
        while c < n {
            *o.add(c) += *a.add(c) * *k.add(c);
            c += 1;
        }
    }
}

/// Channel mixing over `n` positions: `out[p*stride + o] += sum_i x(p)[i] * w[i*co + o]`
/// for o < co (`stride` >= co: the output rows may be wider, e.g. one group of several).
/// Register tiles of P positions x V vectors of 8 output channels (at least 8 independent
/// accumulators to hide the FMA latency); output-channel blocks outermost, so a block of
/// weights (ci x 8V values) stays in L1 while every position tile reuses it.
///
/// # Safety
/// AVX2 + FMA; `x(p)` points at `ci` readable values for p < n; `w` at ci*co; `out` at
/// (n-1)*stride + co.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mix(
    n: usize,
    x: impl Fn(usize) -> *const f32,
    ci: usize,
    w: *const f32,
    co: usize,
    stride: usize,
    out: *mut f32,
) {
    // SAFETY: forwarded from the caller; every tile stays inside 0..n.
    unsafe {
        match n {
            0 => {}
            1 => run::<1, 8>(0, 1, &x, ci, w, (co, stride), out),
            2 => run::<2, 4>(0, 1, &x, ci, w, (co, stride), out),
            3 => run::<3, 3>(0, 1, &x, ci, w, (co, stride), out),
            5 => run::<5, 2>(0, 1, &x, ci, w, (co, stride), out),
            6 => run::<6, 2>(0, 1, &x, ci, w, (co, stride), out),
            _ => {
                let tiles = n / 4;
                run::<4, 3>(0, tiles, &x, ci, w, (co, stride), out);
                let p = tiles * 4;
                match n - p {
                    3 => run::<3, 3>(p, 1, &x, ci, w, (co, stride), out),
                    2 => run::<2, 4>(p, 1, &x, ci, w, (co, stride), out),
                    1 => run::<1, 8>(p, 1, &x, ci, w, (co, stride), out),
                    _ => {}
                }
            }
        }
    }
}

/// `tiles` tiles of `P` positions from `p0`, all `co` output channels (rows `stride` apart):
/// blocks of `V` vectors, then 2, then 1, then a scalar tail of `co % 8` channels.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn run<const P: usize, const V: usize>(
    p0: usize,
    tiles: usize,
    x: &impl Fn(usize) -> *const f32,
    ci: usize,
    w: *const f32,
    (co, stride): (usize, usize),
    out: *mut f32,
) {
    // SAFETY: as in `mix`.
    unsafe {
        let tile_at = |t: usize, o: usize, v: usize| {
            let p = p0 + t * P;
            let xs: [*const f32; P] = std::array::from_fn(|k| x(p + k));
            let outs: [*mut f32; P] = std::array::from_fn(|k| out.add((p + k) * stride + o));
            match v {
                1 => tile::<P, 1>(&xs, ci, w.add(o), co, outs),
                2 => tile::<P, 2>(&xs, ci, w.add(o), co, outs),
                _ => tile::<P, V>(&xs, ci, w.add(o), co, outs),
            }
        };
        let mut o = 0;
        while o + 8 * V <= co {
            for t in 0..tiles {
                tile_at(t, o, V);
            }
            o += 8 * V;
        }
        if V > 2 && o + 16 <= co {
            for t in 0..tiles {
                tile_at(t, o, 2);
            }
            o += 16;
        }
        while o + 8 <= co {
            for t in 0..tiles {
                tile_at(t, o, 1);
            }
            o += 8;
        }
        if o < co {
            for p in p0..p0 + tiles * P {
                let xp = x(p);
                let op = out.add(p * stride);
                for i in 0..ci {
                    let a = *xp.add(i);
                    let wr = w.add(i * co);
                    for oo in o..co {
                        *op.add(oo) += a * *wr.add(oo);
                    }
                }
            }
        }
    }
}

/// The register tile: P positions x V vectors of 8 output channels, reduced over `ci`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const P: usize, const V: usize>(
    xs: &[*const f32; P],
    ci: usize,
    w: *const f32,
    co: usize,
    outs: [*mut f32; P],
) {
    // SAFETY: as in `mix`; the caller keeps the V vectors inside the co channels.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); V]; P];
        for p in 0..P {
            for v in 0..V {
                acc[p][v] = _mm256_loadu_ps(outs[p].add(8 * v));
            }
        }
        for i in 0..ci {
            let wr = w.add(i * co);
            let mut wv = [_mm256_setzero_ps(); V];
            for v in 0..V {
                wv[v] = _mm256_loadu_ps(wr.add(8 * v));
            }
            for p in 0..P {
                let b = _mm256_broadcast_ss(&*xs[p].add(i));
                for v in 0..V {
                    acc[p][v] = _mm256_fmadd_ps(b, wv[v], acc[p][v]);
                }
            }
        }
        for p in 0..P {
            for v in 0..V {
                _mm256_storeu_ps(outs[p].add(8 * v), acc[p][v]);
            }
        }
    }
}
