//! Causal convolutions over frames: standard, depthwise, pointwise and the fused separable block.
//!
//! Time (the streaming axis) is causal: output j reads inputs `j*s + x*d - (k_t-1)*d`, x = 0..k_t.
//! Width is zero "same" padded: output position p reads `p*s_w + y - (k_w-1)/2`, y = 0..k_w.
//! `step` kernels keep the channel index innermost over packed weights so the compiler
//! vectorizes them; `forward` kernels are the plain oracle over the reference weight layout.

use crate::layers::history::History;
use crate::shape::{Activation, FrameShape};

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
        }
    }
    /// Zero columns added on the left of the width axis.
    pub fn pad_left(&self) -> usize {
        (self.k_w - 1) / 2
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
        }
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.geom.out_width, self.out_channels)
    }

    /// One output frame from the newest input frame and the history (no allocation).
    pub fn compute(&self, hist: &History, input: &[f32], out: &mut [f32]) {
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

    /// One output frame from the newest input frame and the history (no allocation).
    pub fn compute(&self, hist: &History, input: &[f32], out: &mut [f32]) {
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
#[derive(Clone, Debug)]
pub struct Pointwise {
    pub input: FrameShape,
    pub out_channels: usize,
    /// Reference layout [C_out][C_in], as stored in the weights file.
    pub weight: Box<[f32]>,
    pub bias: Box<[f32]>,
    pub activation: Activation,
    /// Packed [C_in][C_out].
    packed: Box<[f32]>,
}

impl Pointwise {
    pub fn new(
        input: FrameShape,
        out_channels: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        activation: Activation,
    ) -> Self {
        let (ci, co) = (input.channels, out_channels);
        assert_eq!(weight.len(), co * ci, "pointwise weight length");
        assert_eq!(bias.len(), co, "pointwise bias length");
        let mut packed = vec![0.0; weight.len()];
        for o in 0..co {
            for i in 0..ci {
                packed[i * co + o] = weight[o * ci + i];
            }
        }
        Self {
            input,
            out_channels,
            weight: weight.into(),
            bias: bias.into(),
            activation,
            packed: packed.into(),
        }
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.input.width, self.out_channels)
    }

    /// One output frame (no allocation).
    pub fn compute(&self, input: &[f32], out: &mut [f32]) {
        let (ci, co) = (self.input.channels, self.out_channels);
        for (xin, o) in input.chunks_exact(ci).zip(out.chunks_exact_mut(co)) {
            o.copy_from_slice(&self.bias);
            for (a, wrow) in xin.iter().zip(self.packed.chunks_exact(co)) {
                axpy(o, *a, wrow);
            }
        }
        self.activation.apply_slice(out);
    }

    /// Offline oracle over `t` frames.
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let (ci, co, w) = (self.input.channels, self.out_channels, self.input.width);
        let mut out = vec![0.0; t * w * co];
        for pos in 0..t * w {
            for o in 0..co {
                let mut acc = self.bias[o];
                for i in 0..ci {
                    acc += self.weight[o * ci + i] * input[pos * ci + i];
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
    pub fn compute(&self, hist: &History, input: &[f32], scratch: &mut [f32], out: &mut [f32]) {
        self.depthwise.compute(hist, input, scratch);
        self.pointwise.compute(scratch, out);
    }

    /// Offline oracle over `t` frames: the two plain forwards in sequence.
    pub fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let mid = self.depthwise.forward(input, t);
        self.pointwise
            .forward(&mid, self.depthwise.geom.out_frames(t))
    }
}
