//! Streaming global average pooling: the mean over the width and the last `frames` frames.

use crate::layers::{LayerState, StreamOp, TensorView};
use crate::shape::FrameShape;

/// A running mean over the width and the last `frames` frames; remembers one per-channel sum
/// per past frame, not the frames themselves.
#[derive(Clone, Debug)]
pub struct AvgPool {
    input: FrameShape,
    frames: usize,
}

impl AvgPool {
    /// The mean over `frames` (at least 1) frames of `input`.
    pub fn new(input: FrameShape, frames: usize) -> Self {
        assert!(frames >= 1, "avgpool over at least one frame");
        Self { input, frames }
    }

    /// How many frames the mean covers.
    pub fn frames(&self) -> usize {
        self.frames
    }

    fn scale(&self) -> f32 {
        1.0 / (self.frames * self.input.width) as f32
    }

    /// Per-channel sums over the width of one frame.
    fn frame_sums(&self, frame: &[f32], sums: &mut [f32]) {
        sums.fill(0.0);
        for pos in frame.chunks_exact(self.input.channels) {
            for (s, x) in sums.iter_mut().zip(pos) {
                *s += x;
            }
        }
    }
}

impl StreamOp for AvgPool {
    fn input(&self) -> FrameShape {
        self.input
    }
    fn output(&self) -> FrameShape {
        FrameShape::new(1, self.input.channels)
    }
    fn history_frames(&self) -> usize {
        self.frames - 1
    }
    fn history_frame_len(&self) -> usize {
        self.input.channels
    }
    fn scratch_len(&self) -> usize {
        self.input.channels
    }
    fn tensors(&self) -> Vec<TensorView<'_>> {
        Vec::new()
    }
    fn flops_per_frame(&self) -> u64 {
        0
    }
    fn step(&self, state: &mut LayerState, input: &[f32], out: &mut [f32]) -> bool {
        state.tick(1);
        self.frame_sums(input, &mut state.scratch);
        out.fill(0.0);
        for lag in (1..self.frames).rev() {
            for (o, s) in out.iter_mut().zip(state.history.lag(lag)) {
                *o += s;
            }
        }
        for (o, s) in out.iter_mut().zip(state.scratch.iter()) {
            *o += s;
            *o *= self.scale();
        }
        state.history.push(&state.scratch);
        true
    }
    fn forward(&self, input: &[f32], t: usize) -> Vec<f32> {
        let c = self.input.channels;
        let mut sums = vec![0.0; t * c];
        for (frame, s) in input
            .chunks_exact(self.input.len())
            .zip(sums.chunks_exact_mut(c))
        {
            self.frame_sums(frame, s);
        }
        let mut out = vec![0.0; t * c];
        for j in 0..t {
            for ch in 0..c {
                let mut acc = 0.0;
                for back in (0..self.frames).rev() {
                    if let Some(tau) = j.checked_sub(back) {
                        acc += sums[tau * c + ch];
                    }
                }
                out[j * c + ch] = acc * self.scale();
            }
        }
        out
    }
}
