//! The depthwise-separable block as one fused layer: depthwise, then pointwise.

use crate::cost::{ConvForm, ConvShape};
use crate::error::NnError;
use crate::kernels::Isa;
use crate::layers::geometry::ConvGeometry;
use crate::layers::{
    Depthwise, History, LayerState, LayerTensors, Pointwise, StreamOp, TensorView,
};
use crate::shape::{Activation, FrameShape};

/// depthwise -> bias -> activation -> pointwise -> bias -> activation, in one step.
#[derive(Clone, Debug)]
pub struct Separable {
    depthwise: Depthwise,
    pointwise: Pointwise,
}

impl Separable {
    /// The block of two halves; the pointwise half reads what the depthwise half writes.
    pub fn new(depthwise: Depthwise, pointwise: Pointwise) -> Self {
        assert_eq!(
            depthwise.output(),
            pointwise.input(),
            "separable halves disagree on the frame between them"
        );
        Self {
            depthwise,
            pointwise,
        }
    }

    /// Reads `depthwise.{weight,bias}` and `pointwise.{weight,bias}` from `tensors`.
    pub fn load(
        geom: ConvGeometry,
        out_channels: usize,
        groups: usize,
        activation: Activation,
        tensors: &mut LayerTensors,
    ) -> Result<Self, NnError> {
        let depthwise = Depthwise::load(geom, activation, &mut tensors.part("depthwise"))?;
        let pointwise = Pointwise::load(
            depthwise.output(),
            out_channels,
            groups,
            activation,
            &mut tensors.part("pointwise"),
        )?;
        Ok(Self::new(depthwise, pointwise))
    }

    /// The same op with both halves running the kernel variant `isa`.
    pub fn with_isa(self, isa: Isa) -> Self {
        Self {
            depthwise: self.depthwise.with_isa(isa),
            pointwise: self.pointwise.with_isa(isa),
        }
    }

    pub fn depthwise(&self) -> &Depthwise {
        &self.depthwise
    }
    pub fn pointwise(&self) -> &Pointwise {
        &self.pointwise
    }

    pub fn output(&self) -> FrameShape {
        self.pointwise.output()
    }

    /// One output frame; `scratch` holds the depthwise output (no allocation).
    #[inline]
    pub fn compute(&self, hist: &History, input: &[f32], scratch: &mut [f32], out: &mut [f32]) {
        self.depthwise.compute(hist, input, scratch);
        self.pointwise.compute(scratch, out);
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
            .forward(&mid, self.depthwise.geom().out_frames(t))
    }
}

impl StreamOp for Separable {
    fn input(&self) -> FrameShape {
        self.depthwise.geom().input
    }
    fn output(&self) -> FrameShape {
        Separable::output(self)
    }
    fn history_frames(&self) -> usize {
        self.depthwise.geom().history_frames()
    }
    fn scratch_len(&self) -> usize {
        self.depthwise.output().len()
    }
    fn geometry(&self) -> Option<&ConvGeometry> {
        Some(self.depthwise.geom())
    }
    fn conv_shape(&self) -> Option<ConvShape> {
        let g = self.depthwise.geom();
        Some(ConvShape {
            form: ConvForm::Separable,
            c_in: g.input.channels,
            c_out: self.pointwise.out_channels(),
            taps: g.k_t * g.k_w,
            positions: g.out_width,
            groups: self.pointwise.groups(),
        })
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        let [dw, db] = self
            .depthwise
            .tensor_views("depthwise.weight", "depthwise.bias");
        let [pw, pb] = self
            .pointwise
            .tensor_views("pointwise.weight", "pointwise.bias");
        vec![dw, db, pw, pb]
    }
    fn flops_per_frame(&self) -> u64 {
        StreamOp::flops_per_frame(&self.depthwise) + StreamOp::flops_per_frame(&self.pointwise)
    }
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        state.convolve(self.depthwise.geom().s_t, input, |history, scratch| {
            self.compute(history, input, scratch, out)
        })
    }
    fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        Separable::forward(self, input, t)
    }
}
