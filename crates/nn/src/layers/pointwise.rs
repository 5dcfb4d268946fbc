//! The 1x1 convolution: mixes channels at every width position, optionally in groups.

use crate::error::NnError;
use crate::kernels::{self, axpy, Isa};
use crate::layers::{LayerState, LayerTensors, StreamOp, TensorView};
use crate::shape::{Activation, FrameShape};

/// A 1x1 convolution: mixes channels at every width position, C_in -> C_out, with bias.
/// With `groups` G > 1 the channels are split into G groups and output group g mixes only
/// input group g (C_in/G -> C_out/G each): an ensemble's members side by side, for instance.
#[derive(Clone, Debug)]
pub struct Pointwise {
    input: FrameShape,
    out_channels: usize,
    /// Channel groups (1: every output mixes every input).
    groups: usize,
    /// Reference layout [C_out][C_in / groups], as stored in the weights file.
    weight: Box<[f32]>,
    bias: Box<[f32]>,
    activation: Activation,
    /// The kernel variant [`Pointwise::compute`] runs, chosen once.
    isa: Isa,
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
            isa: Isa::best(),
        }
    }

    /// Reads the weight `[C_out, C_in / groups]` and bias `[C_out]` from `tensors`; `groups`
    /// must divide both channel counts (checked by the builder).
    pub fn load(
        input: FrameShape,
        out_channels: usize,
        groups: usize,
        activation: Activation,
        tensors: &mut LayerTensors,
    ) -> Result<Self, NnError> {
        let weight = tensors.get("weight", &Self::weight_shape(input, out_channels, groups))?;
        let bias = tensors.get("bias", &[out_channels])?;
        Ok(Self::grouped(
            input,
            out_channels,
            groups,
            weight,
            bias,
            activation,
        ))
    }

    fn weight_shape(input: FrameShape, out_channels: usize, groups: usize) -> Vec<usize> {
        vec![out_channels, input.channels / groups]
    }

    /// The same op running the kernel variant `isa` (if this CPU supports it).
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa.or_scalar();
        self
    }

    pub fn input(&self) -> FrameShape {
        self.input
    }
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    pub fn groups(&self) -> usize {
        self.groups
    }
    /// The weight in the reference layout [C_out][C_in / groups].
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The tensors, named `weight` and `bias` (a separable layer puts them under `pointwise`).
    pub(crate) fn tensor_views(
        &self,
        weight: &'static str,
        bias: &'static str,
    ) -> [TensorView<'_>; 2] {
        TensorView::weight_and_bias(
            [weight, bias],
            Self::weight_shape(self.input, self.out_channels, self.groups),
            &self.weight,
            &self.bias,
        )
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

    /// One output frame (no allocation), with the kernel variant chosen when the op was made.
    #[inline]
    pub fn compute(&self, input: &[f32], out: &mut [f32]) {
        self.compute_isa(self.isa, input, out)
    }

    /// [`Pointwise::compute`] with a chosen kernel variant (an unsupported one falls back to
    /// [`Isa::Scalar`]).
    pub fn compute_with(&self, isa: Isa, input: &[f32], out: &mut [f32]) {
        self.compute_isa(isa.or_scalar(), input, out)
    }

    /// `isa` is supported (the caller checked).
    #[inline]
    fn compute_isa(&self, isa: Isa, input: &[f32], out: &mut [f32]) {
        let (ci, co) = (self.input.channels, self.out_channels);
        assert_eq!(input.len(), self.input.width * ci, "pointwise input length");
        assert_eq!(out.len(), self.input.width * co, "pointwise output length");
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma {
            for o in out.chunks_exact_mut(co) {
                o.copy_from_slice(&self.bias);
            }
            let (cig, cog) = self.group_channels();
            for g in 0..self.groups {
                let x = input[g * cig..].as_ptr();
                // SAFETY: AVX2 and FMA are supported (`isa` is only Avx2Fma then); position p reads
                // input[p*ci + g*cig..][..cig], the group's packed block holds cig*cog values
                // and position p writes out[p*co + g*cog..][..cog] (lengths asserted).
                unsafe {
                    kernels::avx2::mix(
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

impl StreamOp for Pointwise {
    fn input(&self) -> FrameShape {
        self.input
    }
    fn output(&self) -> FrameShape {
        Pointwise::output(self)
    }
    fn history_frames(&self) -> usize {
        0
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        self.tensor_views("weight", "bias").into()
    }
    fn flops_per_frame(&self) -> u64 {
        2 * (self.weight.len() * self.input.width) as u64
    }
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        state.tick(1);
        self.compute(input, out);
        true
    }
    fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        Pointwise::forward(self, input, t)
    }
}
