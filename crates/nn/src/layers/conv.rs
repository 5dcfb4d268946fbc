//! Causal convolutions over frames: standard, depthwise, pointwise and the fused separable block.
//!
//! Time (the streaming axis) is causal: output j reads inputs `j*s + x*d - (k_t-1)*d`, x = 0..k_t.
//! Width is zero "same" padded: output position p reads `p*s_w + y - pad_left`, y = 0..k_w, where
//! `pad_left` is `(k_w-1)/2` unless the spec sets it (TensorFlow's 'SAME' pads less on the left
//! for some strides).
//! `step` kernels keep the channel index innermost over packed weights so the compiler
//! vectorizes them; `forward` kernels are the plain oracle over the reference weight layout.
//! On x86_64 with AVX2 + FMA (detected at run time) the `compute` kernels take an explicit
//! `std::arch` path: register-blocked over several output positions and 8-lane channel vectors
//! (see [`Isa`]); `compute_with(Isa::Scalar, ..)` is the portable reference they are tested
//! against.

use crate::layers::history::History;
use crate::shape::{Activation, FrameShape};

/// Which instruction set a `compute` kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable code (the reference; the compiler vectorizes it for the build's baseline).
    Scalar,
    /// x86_64 AVX2 + FMA intrinsics, register-blocked.
    Avx2Fma,
}

impl Isa {
    /// The fastest variant this CPU supports (detected at run time, cached by std).
    #[inline]
    pub fn best() -> Isa {
        if Isa::Avx2Fma.is_supported() {
            Isa::Avx2Fma
        } else {
            Isa::Scalar
        }
    }

    /// Whether this CPU can run the variant.
    #[inline]
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2Fma => false,
        }
    }

    /// Every variant this CPU supports, the reference first.
    pub fn supported() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2Fma]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }
}

/// Kernel size, strides, dilation and padding of a convolution, with its frame shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvGeometry {
    pub k_t: usize,
    pub k_w: usize,
    pub s_t: usize,
    pub s_w: usize,
    pub dilation: usize,
    /// A centred kernel run causally; only changes the reported delay.
    pub centered: bool,
    pub input: FrameShape,
    /// Output width (channels depend on the layer).
    pub out_width: usize,
    /// Zero columns before the first input column (default `(k_w - 1) / 2`).
    pub width_pad_left: usize,
}

impl ConvGeometry {
    pub fn new(
        input: FrameShape,
        (k_t, k_w): (usize, usize),
        (s_t, s_w): (usize, usize),
        dilation: usize,
        centered: bool,
    ) -> Self {
        let out_width = (input.width - 1) / s_w + 1;
        Self {
            k_t,
            k_w,
            s_t,
            s_w,
            dilation,
            centered,
            input,
            out_width,
            width_pad_left: (k_w - 1) / 2,
        }
    }
    /// The same geometry with `pad` zero columns on the left of the width axis instead of
    /// `(k_w - 1) / 2` (the output width stays `ceil(width / s_w)`).
    pub fn with_pad_left(mut self, pad: usize) -> Self {
        self.width_pad_left = pad;
        self
    }
    /// Zero columns added on the left of the width axis.
    pub fn pad_left(&self) -> usize {
        self.width_pad_left
    }
    /// Past frames the layer must keep.
    pub fn history_frames(&self) -> usize {
        (self.k_t - 1) * self.dilation
    }
    /// Reported delay in input frames: (k_t - 1) * d / 2 for a centred kernel, else 0.
    pub fn delay(&self) -> usize {
        if self.centered {
            self.history_frames() / 2
        } else {
            0
        }
    }
    /// Input column read by output column `p` at kernel column `y`, if inside the frame.
    #[inline(always)]
    fn in_col(&self, p: usize, y: usize) -> Option<usize> {
        let c = (p * self.s_w + y).checked_sub(self.pad_left())?;
        (c < self.input.width).then_some(c)
    }
    /// Input time read by output `j` at kernel tap `x` in the offline forward, if not padding.
    #[inline(always)]
    fn in_time(&self, j: usize, x: usize) -> Option<usize> {
        (j * self.s_t + x * self.dilation).checked_sub(self.history_frames())
    }
    /// Output frames produced from `t` input frames.
    pub fn out_frames(&self, t: usize) -> usize {
        t.div_ceil(self.s_t)
    }
}

/// The frame at kernel tap `x` (x = k_t - 1 is the newest frame, `input`).
#[inline(always)]
fn tap<'a>(g: &ConvGeometry, hist: &'a History, input: &'a [f32], x: usize) -> &'a [f32] {
    let lag = (g.k_t - 1 - x) * g.dilation;
    if lag == 0 {
        input
    } else {
        hist.lag(lag)
    }
}

/// `out[..] += a * w[..]`, the inner loop of every mixing kernel.
#[inline(always)]
fn axpy(out: &mut [f32], a: f32, w: &[f32]) {
    for (o, w) in out.iter_mut().zip(w) {
        *o += a * w;
    }
}

/// A standard (full) causal convolution: every output channel mixes every input channel.
#[derive(Clone, Debug)]
pub struct Conv {
    pub geom: ConvGeometry,
    pub out_channels: usize,
    /// Reference layout [C_out][C_in][k_t][k_w] (PyTorch), as stored in the weights file.
    pub weight: Box<[f32]>,
    pub bias: Box<[f32]>,
    pub activation: Activation,
    /// Packed [k_t][k_w][C_in][C_out] for the streaming kernel.
    packed: Box<[f32]>,
    /// C_in zeros: the input read at a zero-padded column by the blocked kernel.
    zeros: Box<[f32]>,
}

impl Conv {
    pub fn new(
        geom: ConvGeometry,
        out_channels: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        activation: Activation,
    ) -> Self {
        let (ci, co, kt, kw) = (geom.input.channels, out_channels, geom.k_t, geom.k_w);
        assert_eq!(weight.len(), co * ci * kt * kw, "conv weight length");
        assert_eq!(bias.len(), co, "conv bias length");
        let mut packed = vec![0.0; weight.len()];
        for o in 0..co {
            for i in 0..ci {
                for x in 0..kt {
                    for y in 0..kw {
                        packed[((x * kw + y) * ci + i) * co + o] =
                            weight[((o * ci + i) * kt + x) * kw + y];
                    }
                }
            }
        }
        Self {
            geom,
            out_channels,
            weight: weight.into(),
            bias: bias.into(),
            activation,
            packed: packed.into(),
            zeros: vec![0.0; ci].into(),
        }
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.geom.out_width, self.out_channels)
    }

    /// One output frame from the newest input frame and the history (no allocation), with
    /// the fastest kernel this CPU supports.
    #[inline]
    pub fn compute(&self, hist: &History, input: &[f32], out: &mut [f32]) {
        self.compute_with(Isa::best(), hist, input, out)
    }

    /// [`Conv::compute`] with a chosen kernel variant (an unsupported one falls back to
    /// [`Isa::Scalar`]).
    pub fn compute_with(&self, isa: Isa, hist: &History, input: &[f32], out: &mut [f32]) {
        let g = &self.geom;
        let (ci, co) = (g.input.channels, self.out_channels);
        assert_eq!(input.len(), g.input.len(), "conv input length");
        assert_eq!(out.len(), g.out_width * co, "conv output length");
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma && isa.is_supported() {
            for o in out.chunks_exact_mut(co) {
                o.copy_from_slice(&self.bias);
            }
            for x in 0..g.k_t {
                let row = tap(g, hist, input, x);
                assert_eq!(row.len(), g.input.len());
                for y in 0..g.k_w {
                    let w = &self.packed[(x * g.k_w + y) * ci * co..][..ci * co];
                    let col_ptr = |p: usize| match g.in_col(p, y) {
                        Some(c) => row[c * ci..].as_ptr(),
                        None => self.zeros.as_ptr(),
                    };
                    // SAFETY: AVX2 and FMA are supported (checked above); every pointer
                    // `col_ptr` returns has `ci` readable values, `w` holds ci*co values and
                    // `out` out_width*co (asserted).
                    unsafe {
                        avx2::mix(
                            g.out_width,
                            col_ptr,
                            ci,
                            w.as_ptr(),
                            co,
                            co,
                            out.as_mut_ptr(),
                        )
                    };
                }
            }
            self.activation.apply_slice(out);
            return;
        }
        let _ = isa;
        self.compute_scalar(hist, input, out)
    }

    fn compute_scalar(&self, hist: &History, input: &[f32], out: &mut [f32]) {
        let g = &self.geom;
        let (ci, co) = (g.input.channels, self.out_channels);
        for o in out.chunks_exact_mut(co) {
            o.copy_from_slice(&self.bias);
        }
        for x in 0..g.k_t {
            let row = tap(g, hist, input, x);
            for (p, o) in out.chunks_exact_mut(co).enumerate() {
                for y in 0..g.k_w {
                    let Some(c) = g.in_col(p, y) else { continue };
                    let xin = &row[c * ci..(c + 1) * ci];
                    let w = &self.packed[(x * g.k_w + y) * ci * co..][..ci * co];
                    for (a, wrow) in xin.iter().zip(w.chunks_exact(co)) {
                        axpy(o, *a, wrow);
                    }
                }
            }
        }
        self.activation.apply_slice(out);
    }

    /// Offline oracle over `t` frames.
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let g = &self.geom;
        let (ci, co, win) = (g.input.channels, self.out_channels, g.input.width);
        let (kt, kw, wout) = (g.k_t, g.k_w, g.out_width);
        let t_out = g.out_frames(t);
        let mut out = vec![0.0; t_out * wout * co];
        for j in 0..t_out {
            for p in 0..wout {
                for o in 0..co {
                    let mut acc = self.bias[o];
                    for i in 0..ci {
                        for x in 0..kt {
                            let Some(ti) = g.in_time(j, x) else { continue };
                            for y in 0..kw {
                                let Some(c) = g.in_col(p, y) else { continue };
                                acc += self.weight[((o * ci + i) * kt + x) * kw + y]
                                    * input[(ti * win + c) * ci + i];
                            }
                        }
                    }
                    out[(j * wout + p) * co + o] = self.activation.apply(acc);
                }
            }
        }
        out
    }
}

/// A causal depthwise convolution: one k_t x k_w filter per channel, no mixing.
#[derive(Clone, Debug)]
pub struct Depthwise {
    pub geom: ConvGeometry,
    /// Reference layout [C][k_t][k_w], as stored in the weights file.
    pub weight: Box<[f32]>,
    pub bias: Box<[f32]>,
    pub activation: Activation,
    /// Packed [k_t][k_w][C].
    packed: Box<[f32]>,
}

impl Depthwise {
    pub fn new(geom: ConvGeometry, weight: Vec<f32>, bias: Vec<f32>, act: Activation) -> Self {
        let (c, kt, kw) = (geom.input.channels, geom.k_t, geom.k_w);
        assert_eq!(weight.len(), c * kt * kw, "depthwise weight length");
        assert_eq!(bias.len(), c, "depthwise bias length");
        let mut packed = vec![0.0; weight.len()];
        for ch in 0..c {
            for x in 0..kt {
                for y in 0..kw {
                    packed[(x * kw + y) * c + ch] = weight[(ch * kt + x) * kw + y];
                }
            }
        }
        Self {
            geom,
            weight: weight.into(),
            bias: bias.into(),
            activation: act,
            packed: packed.into(),
        }
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.geom.out_width, self.geom.input.channels)
    }

    /// One output frame from the newest input frame and the history (no allocation), with
    /// the fastest kernel this CPU supports.
    #[inline]
    pub fn compute(&self, hist: &History, input: &[f32], out: &mut [f32]) {
        self.compute_with(Isa::best(), hist, input, out)
    }

    /// [`Depthwise::compute`] with a chosen kernel variant (an unsupported one falls back to
    /// [`Isa::Scalar`]).
    pub fn compute_with(&self, isa: Isa, hist: &History, input: &[f32], out: &mut [f32]) {
        let g = &self.geom;
        let c = g.input.channels;
        assert_eq!(input.len(), g.input.len(), "depthwise input length");
        assert_eq!(out.len(), g.out_width * c, "depthwise output length");
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma && isa.is_supported() {
            for o in out.chunks_exact_mut(c) {
                o.copy_from_slice(&self.bias);
            }
            for x in 0..g.k_t {
                let row = tap(g, hist, input, x);
                assert_eq!(row.len(), g.input.len());
                for (p, o) in out.chunks_exact_mut(c).enumerate() {
                    for y in 0..g.k_w {
                        let Some(col) = g.in_col(p, y) else { continue };
                        let xin = &row[col * c..(col + 1) * c];
                        let k = &self.packed[(x * g.k_w + y) * c..][..c];
                        // SAFETY: AVX2 and FMA are supported (checked above).
                        unsafe { avx2::fmadd(o, xin, k) };
                    }
                }
            }
            self.activation.apply_slice(out);
            return;
        }
        let _ = isa;
        self.compute_scalar(hist, input, out)
    }

    fn compute_scalar(&self, hist: &History, input: &[f32], out: &mut [f32]) {
        let g = &self.geom;
        let c = g.input.channels;
        for o in out.chunks_exact_mut(c) {
            o.copy_from_slice(&self.bias);
        }
        for x in 0..g.k_t {
            let row = tap(g, hist, input, x);
            for (p, o) in out.chunks_exact_mut(c).enumerate() {
                for y in 0..g.k_w {
                    let Some(col) = g.in_col(p, y) else { continue };
                    let xin = &row[col * c..(col + 1) * c];
                    let k = &self.packed[(x * g.k_w + y) * c..][..c];
                    for ((o, a), k) in o.iter_mut().zip(xin).zip(k) {
                        *o += a * k;
                    }
                }
            }
        }
        self.activation.apply_slice(out);
    }

    /// Offline oracle over `t` frames.
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let g = &self.geom;
        let (c, win, wout) = (g.input.channels, g.input.width, g.out_width);
        let t_out = g.out_frames(t);
        let mut out = vec![0.0; t_out * wout * c];
        for j in 0..t_out {
            for p in 0..wout {
                for ch in 0..c {
                    let mut acc = self.bias[ch];
                    for x in 0..g.k_t {
                        let Some(ti) = g.in_time(j, x) else { continue };
                        for y in 0..g.k_w {
                            let Some(col) = g.in_col(p, y) else { continue };
                            acc += self.weight[(ch * g.k_t + x) * g.k_w + y]
                                * input[(ti * win + col) * c + ch];
                        }
                    }
                    out[(j * wout + p) * c + ch] = self.activation.apply(acc);
                }
            }
        }
        out
    }
}

/// A 1x1 convolution: mixes channels at every width position, C_in -> C_out, with bias.
/// With `groups` G > 1 the channels are split into G groups and output group g mixes only
/// input group g (C_in/G -> C_out/G each): an ensemble's members side by side, for instance.
#[derive(Clone, Debug)]
pub struct Pointwise {
    pub input: FrameShape,
    pub out_channels: usize,
    /// Channel groups (1: every output mixes every input).
    pub groups: usize,
    /// Reference layout [C_out][C_in / groups], as stored in the weights file.
    pub weight: Box<[f32]>,
    pub bias: Box<[f32]>,
    pub activation: Activation,
    /// Packed [group][C_in / groups][C_out / groups].
    packed: Box<[f32]>,
}

impl Pointwise {
    /// A pointwise layer that mixes all channels (one group).
    pub fn new(
        input: FrameShape,
        out_channels: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        activation: Activation,
    ) -> Self {
        Self::grouped(input, out_channels, 1, weight, bias, activation)
    }

    /// A pointwise layer of `groups` channel groups; both channel counts must divide by it.
    pub fn grouped(
        input: FrameShape,
        out_channels: usize,
        groups: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        activation: Activation,
    ) -> Self {
        let (ci, co) = (input.channels, out_channels);
        assert!(
            groups > 0 && ci % groups == 0 && co % groups == 0,
            "pointwise groups divide both channel counts"
        );
        let (cig, cog) = (ci / groups, co / groups);
        assert_eq!(weight.len(), co * cig, "pointwise weight length");
        assert_eq!(bias.len(), co, "pointwise bias length");
        let mut packed = vec![0.0; weight.len()];
        for o in 0..co {
            let (g, og) = (o / cog, o % cog);
            for i in 0..cig {
                packed[(g * cig + i) * cog + og] = weight[o * cig + i];
            }
        }
        Self {
            input,
            out_channels,
            groups,
            weight: weight.into(),
            bias: bias.into(),
            activation,
            packed: packed.into(),
        }
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.input.width, self.out_channels)
    }

    /// Input and output channels of one group.
    fn group_channels(&self) -> (usize, usize) {
        (
            self.input.channels / self.groups,
            self.out_channels / self.groups,
        )
    }

    /// The weights as one [C_out][C_in] matrix, zeros between the groups.
    pub fn dense_weight(&self) -> Vec<f32> {
        let (ci, co) = (self.input.channels, self.out_channels);
        let (cig, cog) = self.group_channels();
        let mut w = vec![0.0; co * ci];
        for o in 0..co {
            let first = (o / cog) * cig;
            w[o * ci + first..o * ci + first + cig]
                .copy_from_slice(&self.weight[o * cig..(o + 1) * cig]);
        }
        w
    }

    /// One output frame (no allocation), with the fastest kernel this CPU supports.
    #[inline]
    pub fn compute(&self, input: &[f32], out: &mut [f32]) {
        self.compute_with(Isa::best(), input, out)
    }

    /// [`Pointwise::compute`] with a chosen kernel variant (an unsupported one falls back to
    /// [`Isa::Scalar`]).
    pub fn compute_with(&self, isa: Isa, input: &[f32], out: &mut [f32]) {
        let (ci, co) = (self.input.channels, self.out_channels);
        assert_eq!(input.len(), self.input.width * ci, "pointwise input length");
        assert_eq!(out.len(), self.input.width * co, "pointwise output length");
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma && isa.is_supported() {
            for o in out.chunks_exact_mut(co) {
                o.copy_from_slice(&self.bias);
            }
            let (cig, cog) = self.group_channels();
            for g in 0..self.groups {
                let x = input[g * cig..].as_ptr();
                // SAFETY: AVX2 and FMA are supported (checked above); position p reads
                // input[p*ci + g*cig..][..cig], the group's packed block holds cig*cog values
                // and position p writes out[p*co + g*cog..][..cog] (lengths asserted).
                unsafe {
                    avx2::mix(
                        self.input.width,
                        |p| x.add(p * ci),
                        cig,
                        self.packed[g * cig * cog..].as_ptr(),
                        cog,
                        co,
                        out[g * cog..].as_mut_ptr(),
                    )
                };
            }
            self.activation.apply_slice(out);
            return;
        }
        let _ = isa;
        self.compute_scalar(input, out)
    }

    fn compute_scalar(&self, input: &[f32], out: &mut [f32]) {
        let (ci, co) = (self.input.channels, self.out_channels);
        let (cig, cog) = self.group_channels();
        for (xin, o) in input.chunks_exact(ci).zip(out.chunks_exact_mut(co)) {
            o.copy_from_slice(&self.bias);
            for ((xg, og), wg) in xin
                .chunks_exact(cig)
                .zip(o.chunks_exact_mut(cog))
                .zip(self.packed.chunks_exact(cig * cog))
            {
                for (a, wrow) in xg.iter().zip(wg.chunks_exact(cog)) {
                    axpy(og, *a, wrow);
                }
            }
        }
        self.activation.apply_slice(out);
    }

    /// Offline oracle over `t` frames.
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let (ci, co, w) = (self.input.channels, self.out_channels, self.input.width);
        let (cig, cog) = self.group_channels();
        let mut out = vec![0.0; t * w * co];
        for pos in 0..t * w {
            for o in 0..co {
                let first = (o / cog) * cig;
                let mut acc = self.bias[o];
                for i in 0..cig {
                    acc += self.weight[o * cig + i] * input[pos * ci + first + i];
                }
                out[pos * co + o] = self.activation.apply(acc);
            }
        }
        out
    }
}

/// The depthwise-separable block as one fused layer: depthwise -> bias -> activation ->
/// pointwise -> bias -> activation.
#[derive(Clone, Debug)]
pub struct Separable {
    pub depthwise: Depthwise,
    pub pointwise: Pointwise,
}

impl Separable {
    pub fn output(&self) -> FrameShape {
        self.pointwise.output()
    }

    /// One output frame; `scratch` holds the depthwise output (no allocation).
    #[inline]
    pub fn compute(&self, hist: &History, input: &[f32], scratch: &mut [f32], out: &mut [f32]) {
        self.compute_with(Isa::best(), hist, input, scratch, out)
    }

    /// [`Separable::compute`] with a chosen kernel variant for both halves.
    pub fn compute_with(
        &self,
        isa: Isa,
        hist: &History,
        input: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        self.depthwise.compute_with(isa, hist, input, scratch);
        self.pointwise.compute_with(isa, scratch, out);
    }

    /// Offline oracle over `t` frames: the two plain forwards in sequence.
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let mid = self.depthwise.forward(input, t);
        self.pointwise
            .forward(&mid, self.depthwise.geom.out_frames(t))
    }
}

/// The AVX2 + FMA kernels. Every function requires a CPU with both features.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `out[c] += a[c] * k[c]` over the common length, 8 lanes at a time.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fmadd(out: &mut [f32], a: &[f32], k: &[f32]) {
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
    pub(super) unsafe fn mix(
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
}
