//! Where a convolution reads: kernel, strides, dilation and padding over (time, width).
//!
//! Time (the streaming axis) is causal: output j reads inputs `j*s + x*d - (k_t-1)*d`, x = 0..k_t.
//! Width is zero "same" padded: output position p reads `p*s_w + y - pad_left`, y = 0..k_w, where
//! `pad_left` is `(k_w-1)/2` unless the spec sets it (TensorFlow's 'SAME' pads less on the left
//! for some strides).

use crate::layers::history::History;
use crate::shape::FrameShape;

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
    /// Whether the layer is 2D (kernel and stride are (time, width) pairs and the weights have
    /// a width axis) or 1D (one kernel size, no width axis in the weights).
    pub two_d: bool,
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
            two_d: k_w > 1 || input.width > 1,
        }
    }
    /// The same geometry, 2D or 1D as given ([`ConvGeometry::new`] guesses 2D from a kernel or
    /// an input wider than 1; the builder says which from the layer's kind).
    pub fn with_two_d(mut self, two_d: bool) -> Self {
        self.two_d = two_d;
        self
    }
    /// The kernel's shape in the weights file: `[k_t]` for 1D layers, `[k_t, k_w]` for 2D.
    pub fn kernel_dims(&self) -> Vec<usize> {
        if self.two_d {
            vec![self.k_t, self.k_w]
        } else {
            vec![self.k_t]
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
    pub(crate) fn in_col(&self, p: usize, y: usize) -> Option<usize> {
        let c = (p * self.s_w + y).checked_sub(self.pad_left())?;
        (c < self.input.width).then_some(c)
    }
    /// Input time read by output `j` at kernel tap `x` in the offline forward, if not padding.
    #[inline(always)]
    pub(crate) fn in_time(&self, j: usize, x: usize) -> Option<usize> {
        (j * self.s_t + x * self.dilation).checked_sub(self.history_frames())
    }
    /// Output frames produced from `t` input frames.
    pub fn out_frames(&self, t: usize) -> usize {
        t.div_ceil(self.s_t)
    }
}

/// The frame at kernel tap `x` (x = k_t - 1 is the newest frame, `input`).
#[inline(always)]
pub(crate) fn tap<'a>(
    g: &ConvGeometry,
    hist: &'a History,
    input: &'a [f32],
    x: usize,
) -> &'a [f32] {
    let lag = (g.k_t - 1 - x) * g.dilation;
    if lag == 0 {
        input
    } else {
        hist.lag(lag)
    }
}
