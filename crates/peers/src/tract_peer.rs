//! The tract peers: the crate's own ONNX export run by tract, per window or in pulse mode.
//!
//! [`TractNet`] runs the window export every hop; [`TractPulse`] is the stream export pulsified.

use prost::Message;
use tract_onnx::prelude::{
    tvec, Arc, Framework, InferenceModelExt, IntoRunnable, Tensor, ToDim, TypedRunnableModel,
    TypedSimpleState,
};
use tract_pulse::internal::{DimLike, PulsedModel, PulsedModelExt};

use sepstream_nn::Network;

use crate::onnx::{to_onnx, TimeAxis, STREAM_SYMBOL};
use crate::PeerError;

fn tract_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::Tract(format!("{e:#}"))
}

/// `t` frames of `[w][c]` values as NCHW `[1, c, t, w]`, into `out`.
fn to_nchw(frames: &[f32], t: usize, w: usize, c: usize, out: &mut [f32]) {
    for ti in 0..t {
        for wi in 0..w {
            for ci in 0..c {
                out[(ci * t + ti) * w + wi] = frames[(ti * w + wi) * c + ci];
            }
        }
    }
}

/// Reads a tract output tensor as f32 values.
fn values(t: &Tensor) -> Result<Vec<f32>, PeerError> {
    Ok(t.try_as_plain_ram()
        .map_err(tract_err)?
        .as_slice::<f32>()
        .map_err(tract_err)?
        .to_vec())
}

/// The DS-CNN in tract: the ONNX export for a fixed window of `t` frames, optimized.
pub struct TractNet {
    state: TypedSimpleState,
    shape: [usize; 4],
}

impl TractNet {
    pub fn new(net: &Network, t: usize) -> Result<Self, PeerError> {
        // Through the serialized bytes, as a user loading the exported file would.
        let bytes = to_onnx(net, TimeAxis::Window(t))?.encode_to_vec();
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(tract_err)?
            .into_optimized()
            .map_err(tract_err)?
            .into_runnable()
            .map_err(tract_err)?;
        let input = net.input_shape();
        Ok(Self {
            state: plan.spawn().map_err(tract_err)?,
            shape: [1, input.channels, t, input.width],
        })
    }

    /// The last output frame of the window (`t` frames of `[w][c]` values).
    pub fn forward_window(&mut self, frames: &[f32]) -> Result<Vec<f32>, PeerError> {
        let [_, c, t, w] = self.shape;
        let mut nchw = vec![0.0f32; frames.len()];
        to_nchw(frames, t, w, c, &mut nchw);
        let x = Tensor::from_shape(&self.shape, &nchw).map_err(tract_err)?;
        let out = self.state.run(tvec!(x.into())).map_err(tract_err)?;
        values(&out[0])
    }
}

/// The DS-CNN in tract's pulse (streaming) mode: the ONNX export with a symbolic time axis,
/// pulsified to `pulse` input frames per call, each giving `pulse / time_stride` output
/// frames `delay` output frames late.
pub struct TractPulse {
    plan: Arc<TypedRunnableModel>,
    state: TypedSimpleState,
    shape: [usize; 4],
    delay: usize,
    out_len: usize,
    nchw: Vec<f32>,
}

impl TractPulse {
    /// Pulsifies the network with `pulse` input frames per call (a multiple of the time
    /// stride).
    pub fn new(net: &Network, pulse: usize) -> Result<Self, PeerError> {
        let bytes = to_onnx(net, TimeAxis::Stream)?.encode_to_vec();
        let typed = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(tract_err)?
            .into_typed()
            .map_err(tract_err)?
            .into_decluttered()
            .map_err(tract_err)?;
        let sym = typed.symbols.sym(STREAM_SYMBOL);
        let pulsed = PulsedModel::new(&typed, sym, &pulse.to_dim()).map_err(tract_err)?;
        let fact = pulsed.output_fact(0).map_err(tract_err)?;
        let stream = fact
            .stream
            .clone()
            .ok_or_else(|| PeerError::Tract("pulsed output has no streaming axis".into()))?;
        let out_frames = fact.shape[stream.axis].to_usize().map_err(tract_err)?;
        if out_frames * net.time_stride() != pulse {
            return Err(PeerError::Tract(format!(
                "pulse of {pulse} frames gives {out_frames} output frames, expected {}",
                pulse / net.time_stride()
            )));
        }
        let plan = pulsed
            .into_typed()
            .map_err(tract_err)?
            .into_optimized()
            .map_err(tract_err)?
            .into_runnable()
            .map_err(tract_err)?;
        let input = net.input_shape();
        Ok(Self {
            state: plan.spawn().map_err(tract_err)?,
            plan,
            shape: [1, input.channels, pulse, input.width],
            delay: stream.delay,
            out_len: net.output_shape().len(),
            nchw: vec![0.0; pulse * input.len()],
        })
    }

    /// Output frames the pulsed model lags behind its input (its first `delay` output frames
    /// are padding).
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Input frames per call.
    pub fn pulse(&self) -> usize {
        self.shape[2]
    }

    /// Back to the start of a stream.
    pub fn reset(&mut self) -> Result<(), PeerError> {
        self.state = self.plan.spawn().map_err(tract_err)?;
        Ok(())
    }

    /// One pulse of input frames (`[w][c]` each) in; its output frames out, `[units]` each,
    /// concatenated.
    pub fn step(&mut self, frames: &[f32]) -> Result<Vec<f32>, PeerError> {
        let [_, c, t, w] = self.shape;
        to_nchw(frames, t, w, c, &mut self.nchw);
        let x = Tensor::from_shape(&self.shape, &self.nchw).map_err(tract_err)?;
        let out = self.state.run(tvec!(x.into())).map_err(tract_err)?;
        // [1, units, frames, 1] -> [frames][units]
        let v = values(&out[0])?;
        let frames_out = v.len() / self.out_len;
        let mut y = vec![0.0; v.len()];
        for u in 0..self.out_len {
            for f in 0..frames_out {
                y[f * self.out_len + u] = v[u * frames_out + f];
            }
        }
        Ok(y)
    }
}
