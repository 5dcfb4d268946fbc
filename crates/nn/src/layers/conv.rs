//! The standard causal convolution: every output channel mixes every input channel.

use crate::cost::{ConvForm, ConvShape};
use crate::error::NnError;
use crate::kernels::{self, axpy, Isa};
use crate::layers::geometry::{tap, ConvGeometry};
use crate::layers::{History, LayerState, LayerTensors, StreamOp, TensorView};
use crate::shape::{Activation, FrameShape};

/// A standard (full) causal convolution: every output channel mixes every input channel.
#[derive(Clone, Debug)]
pub struct Conv {
    geom: ConvGeometry,
    out_channels: usize,
    /// Reference layout [C_out][C_in][k_t][k_w] (PyTorch), as stored in the weights file.
    weight: Box<[f32]>,
    bias: Box<[f32]>,
    activation: Activation,
    /// The kernel variant [`Conv::compute`] runs, chosen once.
    isa: Isa,
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
            isa: Isa::best(),
        }
    }

    /// Reads the weight `[C_out, C_in, k_t(, k_w)]` and bias `[C_out]` from `tensors`.
    pub fn load(
        geom: ConvGeometry,
        out_channels: usize,
        activation: Activation,
        tensors: &mut LayerTensors,
    ) -> Result<Self, NnError> {
        let weight = tensors.get("weight", &Self::weight_shape(&geom, out_channels))?;
        let bias = tensors.get("bias", &[out_channels])?;
        Ok(Self::new(geom, out_channels, weight, bias, activation))
    }

    fn weight_shape(geom: &ConvGeometry, out_channels: usize) -> Vec<usize> {
        let mut shape = vec![out_channels, geom.input.channels];
        shape.extend(geom.kernel_dims());
        shape
    }

    /// The same op running the kernel variant `isa` (if this CPU supports it).
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa.or_scalar();
        self
    }

    pub fn geom(&self) -> &ConvGeometry {
        &self.geom
    }
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    /// The weight in the reference layout [C_out][C_in][k_t][k_w].
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.geom.out_width, self.out_channels)
    }

    /// One output frame from the newest input frame and the history (no allocation), with
    /// the kernel variant chosen when the op was made.
    #[inline]
    pub fn compute(&self, hist: &History, input: &[f32], out: &mut [f32]) {
        self.compute_isa(self.isa, hist, input, out)
    }

    /// [`Conv::compute`] with a chosen kernel variant (an unsupported one falls back to
    /// [`Isa::Scalar`]).
    pub fn compute_with(&self, isa: Isa, hist: &History, input: &[f32], out: &mut [f32]) {
        self.compute_isa(isa.or_scalar(), hist, input, out)
    }

    /// `isa` is supported (the caller checked).
    #[inline]
    fn compute_isa(&self, isa: Isa, hist: &History, input: &[f32], out: &mut [f32]) {
        let g = &self.geom;
        let (ci, co) = (g.input.channels, self.out_channels);
        assert_eq!(input.len(), g.input.len(), "conv input length");
        assert_eq!(out.len(), g.out_width * co, "conv output length");
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma {
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
                    // SAFETY: AVX2 and FMA are supported (`isa` is only Avx2Fma then); every pointer
                    // `col_ptr` returns has `ci` readable values, `w` holds ci*co values and
                    // `out` out_width*co (asserted).
                    unsafe {
                        kernels::avx2::mix(
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

impl StreamOp for Conv {
    fn input(&self) -> FrameShape {
        self.geom.input
    }
    fn output(&self) -> FrameShape {
        Conv::output(self)
    }
    fn history_frames(&self) -> usize {
        self.geom.history_frames()
    }
    fn geometry(&self) -> Option<&ConvGeometry> {
        Some(&self.geom)
    }
    fn conv_shape(&self) -> Option<ConvShape> {
        Some(ConvShape {
            form: ConvForm::Standard,
            c_in: self.geom.input.channels,
            c_out: self.out_channels,
            taps: self.geom.k_t * self.geom.k_w,
            positions: self.geom.out_width,
            groups: 1,
        })
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        TensorView::weight_and_bias(
            ["weight", "bias"],
            Self::weight_shape(&self.geom, self.out_channels),
            &self.weight,
            &self.bias,
        )
        .into()
    }
    fn flops_per_frame(&self) -> u64 {
        2 * (self.weight.len() * self.geom.out_width) as u64
    }
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        state.convolve(self.geom.s_t, input, |history, _| {
            self.compute(history, input, out)
        })
    }
    fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        Conv::forward(self, input, t)
    }
}
