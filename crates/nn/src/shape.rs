//! Frame shapes and activation functions shared by every layer.

use serde::{Deserialize, Serialize};

/// The shape of one frame (one time step or one image row): `width` positions of `channels`
/// values, stored `[w][c]` with the channel index fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameShape {
    pub width: usize,
    pub channels: usize,
}

impl FrameShape {
    pub const fn new(width: usize, channels: usize) -> Self {
        Self { width, channels }
    }
    /// Number of f32 values in one frame.
    pub const fn len(&self) -> usize {
        self.width * self.channels
    }
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Element-wise activation applied after a layer's bias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    Relu6,
}

impl Activation {
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
        }
    }

    /// Applies the activation to every value of `xs` in place.
    #[inline]
    pub fn apply_slice(self, xs: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Relu6 => xs.iter_mut().for_each(|x| *x = x.clamp(0.0, 6.0)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
        }
    }
}
