//! The causal depthwise convolution: one k_t x k_w filter per channel, no mixing.

use crate::error::NnError;
use crate::kernels::{self, Isa};
use crate::layers::geometry::{tap, ConvGeometry};
use crate::layers::{History, LayerState, LayerTensors, StreamOp, TensorView};
use crate::shape::{Activation, FrameShape};

/// A causal depthwise convolution: one k_t x k_w filter per channel, no mixing.
#[derive(Clone, Debug)]
pub struct Depthwise {
    geom: ConvGeometry,
    /// Reference layout [C][k_t][k_w], as stored in the weights file.
    weight: Box<[f32]>,
    bias: Box<[f32]>,
    activation: Activation,
    /// The kernel variant [`Depthwise::compute`] runs, chosen once.
    isa: Isa,
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
            isa: Isa::best(),
        }
    }

    /// Reads the weight `[C, k_t(, k_w)]` and bias `[C]` from `tensors`.
    pub fn load(
        geom: ConvGeometry,
        activation: Activation,
        tensors: &mut LayerTensors,
    ) -> Result<Self, NnError> {
        let weight = tensors.get("weight", &Self::weight_shape(&geom))?;
        let bias = tensors.get("bias", &[geom.input.channels])?;
        Ok(Self::new(geom, weight, bias, activation))
    }

    fn weight_shape(geom: &ConvGeometry) -> Vec<usize> {
        let mut shape = vec![geom.input.channels];
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
    /// The filters in the reference layout [C][k_t][k_w].
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The tensors, named `weight` and `bias` (a separable layer puts them under `depthwise`).
    pub(crate) fn tensor_views(
        &self,
        weight: &'static str,
        bias: &'static str,
    ) -> [TensorView<'_>; 2] {
        TensorView::weight_and_bias(
            [weight, bias],
            Self::weight_shape(&self.geom),
            &self.weight,
            &self.bias,
        )
    }

    pub fn output(&self) -> FrameShape {
        FrameShape::new(self.geom.out_width, self.geom.input.channels)
    }

    /// One output frame from the newest input frame and the history (no allocation), with
    /// the kernel variant chosen when the op was made.
    #[inline]
    pub fn compute(&self, hist: &History, input: &[f32], out: &mut [f32]) {
        self.compute_isa(self.isa, hist, input, out)
    }

    /// [`Depthwise::compute`] with a chosen kernel variant (an unsupported one falls back to
    /// [`Isa::Scalar`]).
    pub fn compute_with(&self, isa: Isa, hist: &History, input: &[f32], out: &mut [f32]) {
        self.compute_isa(isa.or_scalar(), hist, input, out)
    }

    /// `isa` is supported (the caller checked).
    #[inline]
    fn compute_isa(&self, isa: Isa, hist: &History, input: &[f32], out: &mut [f32]) {
        let g = &self.geom;
        let c = g.input.channels;
        assert_eq!(input.len(), g.input.len(), "depthwise input length");
        assert_eq!(out.len(), g.out_width * c, "depthwise output length");
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma {
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
                        // SAFETY: AVX2 and FMA are supported (`isa` is only Avx2Fma then).
                        unsafe { kernels::avx2::fmadd(o, xin, k) };
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

impl StreamOp for Depthwise {
    fn input(&self) -> FrameShape {
        self.geom.input
    }
    fn output(&self) -> FrameShape {
        Depthwise::output(self)
    }
    fn history_frames(&self) -> usize {
        self.geom.history_frames()
    }
    fn geometry(&self) -> Option<&ConvGeometry> {
        Some(&self.geom)
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        self.tensor_views("weight", "bias").into()
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
        Depthwise::forward(self, input, t)
    }
}
