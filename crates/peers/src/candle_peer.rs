//! The candle peer: the DS-CNN as a Rust user writes it first, `conv2d` over the window.
//!
//! (NCHW tensors, CPU, f32; the whole window every hop.) candle's `conv2d` takes one stride
//! for both axes; a layer whose time and width strides differ (DS-CNN-L's first layer strides
//! 2 in time and 1 in width) runs at the strides' greatest common divisor and then keeps every
//! `s / gcd`-th output along each axis, which computes what ONNX's per-axis `strides` does.

use candle_core::{Device, Tensor};
use sepstream_nn::layers::{Conv, ConvGeometry, Depthwise, Pointwise};
use sepstream_nn::{Activation, Layer, Network, Op};

use crate::{unsupported, PeerError};

enum CandleLayer {
    /// conv2d with explicit zero padding (time: causal; width: same), stride, groups.
    Conv {
        w: Tensor,
        b: Tensor,
        pad_t: usize,
        pad_l: usize,
        pad_r: usize,
        /// The stride conv2d runs at: gcd of the time and width strides.
        stride: usize,
        /// Then every `keep_t`-th output frame and `keep_w`-th output column is kept.
        keep_t: usize,
        keep_w: usize,
        dilation: usize,
        groups: usize,
        act: Activation,
    },
    Activation(Activation),
    /// Mean over the last `frames` frames (zeros before the start) and the width.
    AvgPool {
        frames: usize,
        width: usize,
    },
    /// Over a width-1 frame: `[1, C] x [C, units]`.
    Dense {
        w_t: Tensor,
        b: Tensor,
        act: Activation,
    },
    Softmax,
}

/// The DS-CNN in candle, NCHW with H = time and W = the frame's width.
pub struct CandleNet {
    layers: Vec<CandleLayer>,
    width: usize,
    channels: usize,
    device: Device,
}

fn activate(x: Tensor, a: Activation) -> candle_core::Result<Tensor> {
    match a {
        Activation::Identity => Ok(x),
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.clamp(0f32, 6f32),
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Every `keep`-th entry of `x` along `axis`, from the first.
fn every_nth(x: Tensor, axis: usize, keep: usize) -> candle_core::Result<Tensor> {
    if keep == 1 {
        return Ok(x);
    }
    let n = x.dim(axis)? as u32;
    let idx = Tensor::arange_step(0u32, n, keep as u32, x.device())?;
    x.index_select(&idx, axis)
}

/// A conv layer from sepstream's reference weight layout (PyTorch's OIHW).
fn conv_layer(
    dev: &Device,
    l: &Layer,
    geom: &ConvGeometry,
    (w, shape): (&[f32], (usize, usize, usize, usize)),
    b: &[f32],
    groups: usize,
    act: Activation,
) -> Result<CandleLayer, PeerError> {
    if geom.dilation != 1 && geom.k_w > 1 {
        return Err(unsupported(
            "candle",
            l,
            "conv2d takes one dilation for both axes",
        ));
    }
    let stride = gcd(geom.s_t, geom.s_w);
    Ok(CandleLayer::Conv {
        w: Tensor::from_slice(w, shape, dev)?,
        b: Tensor::from_slice(b, (1, b.len(), 1, 1), dev)?,
        pad_t: geom.history_frames(),
        pad_l: geom.pad_left(),
        pad_r: geom.k_w - 1 - geom.pad_left(),
        stride,
        keep_t: geom.s_t / stride,
        keep_w: geom.s_w / stride,
        dilation: geom.dilation,
        groups,
        act,
    })
}

fn depthwise(dev: &Device, l: &Layer, d: &Depthwise) -> Result<CandleLayer, PeerError> {
    let g = &d.geom();
    let c = g.input.channels;
    let w = (d.weight(), (c, 1, g.k_t, g.k_w));
    conv_layer(dev, l, g, w, d.bias(), c, d.activation())
}

fn pointwise(dev: &Device, l: &Layer, p: &Pointwise) -> Result<CandleLayer, PeerError> {
    let g = ConvGeometry::new(p.input(), (1, 1), (1, 1), 1, false);
    let w = (
        p.weight(),
        (p.out_channels(), p.input().channels / p.groups(), 1, 1),
    );
    conv_layer(dev, l, &g, w, p.bias(), p.groups(), p.activation())
}

fn full_conv(dev: &Device, l: &Layer, c: &Conv) -> Result<CandleLayer, PeerError> {
    let g = &c.geom();
    let w = (
        c.weight(),
        (c.out_channels(), g.input.channels, g.k_t, g.k_w),
    );
    conv_layer(dev, l, g, w, c.bias(), 1, c.activation())
}

impl CandleNet {
    /// Copies the network's weights into candle tensors.
    pub fn new(net: &Network) -> Result<Self, PeerError> {
        let dev = Device::Cpu;
        let mut layers = Vec::new();
        let mut pooled = false;
        for l in net.layers() {
            if matches!(l.op, Op::Dense(_) | Op::Softmax(_)) && !pooled {
                return Err(unsupported(
                    "candle",
                    l,
                    "dense and softmax after the pool only",
                ));
            }
            pooled |= matches!(l.op, Op::AvgPool(_));
            match &l.op {
                Op::Conv(c) => layers.push(full_conv(&dev, l, c)?),
                Op::Depthwise(d) => layers.push(depthwise(&dev, l, d)?),
                Op::Pointwise(p) => layers.push(pointwise(&dev, l, p)?),
                Op::Separable(s) => {
                    layers.push(depthwise(&dev, l, s.depthwise())?);
                    layers.push(pointwise(&dev, l, s.pointwise())?);
                }
                Op::Activation(e) => layers.push(CandleLayer::Activation(e.activation())),
                Op::AvgPool(p) => layers.push(CandleLayer::AvgPool {
                    frames: p.frames(),
                    width: l.input().width,
                }),
                Op::Dense(d) => {
                    if d.input().width != 1 {
                        return Err(unsupported("candle", l, "dense over a width-1 frame only"));
                    }
                    let w = Tensor::from_slice(d.weight(), (d.units(), d.input().len()), &dev)?;
                    layers.push(CandleLayer::Dense {
                        w_t: w.t()?.contiguous()?,
                        b: Tensor::from_slice(d.bias(), (1, d.units()), &dev)?,
                        act: d.activation(),
                    });
                }
                Op::Softmax(_) => layers.push(CandleLayer::Softmax),
                _ => return Err(unsupported("candle", l, "the kind is not mapped")),
            }
        }
        Ok(Self {
            layers,
            width: net.input_shape().width,
            channels: net.input_shape().channels,
            device: dev,
        })
    }

    /// The last output frame of the window `frames` (`t` frames of `[w][c]` values).
    pub fn forward_window(&self, frames: &[f32], t: usize) -> Result<Vec<f32>, PeerError> {
        let x = Tensor::from_slice(frames, (1, t, self.width, self.channels), &self.device)?;
        // [t][w][c] -> NCHW [1, c, t, w]
        let mut x = x.permute((0, 3, 1, 2))?.contiguous()?;
        for layer in &self.layers {
            x = match layer {
                CandleLayer::Conv {
                    w,
                    b,
                    pad_t,
                    pad_l,
                    pad_r,
                    stride,
                    keep_t,
                    keep_w,
                    dilation,
                    groups,
                    act,
                } => {
                    let xp = x
                        .pad_with_zeros(2, *pad_t, 0)?
                        .pad_with_zeros(3, *pad_l, *pad_r)?;
                    let y = xp.conv2d(w, 0, *stride, *dilation, *groups)?;
                    let y = every_nth(every_nth(y, 2, *keep_t)?, 3, *keep_w)?;
                    activate(y.broadcast_add(b)?, *act)?
                }
                CandleLayer::Activation(a) => activate(x, *a)?,
                CandleLayer::AvgPool { frames, width } => {
                    // Only the last output frame is wanted: the mean of the last `frames`.
                    let t = x.dim(2)?;
                    let n = (*frames).min(t);
                    let last = x.narrow(2, t - n, n)?;
                    (last.sum((2, 3))? / (*frames * *width) as f64)?
                }
                CandleLayer::Dense { w_t, b, act } => {
                    activate(x.flatten_from(1)?.matmul(w_t)?.broadcast_add(b)?, *act)?
                }
                CandleLayer::Softmax => candle_nn::ops::softmax_last_dim(&x)?,
            };
        }
        // Anything still with a time axis: keep its last frame, as [w][c].
        let x = if x.rank() == 4 {
            let t = x.dim(2)?;
            x.narrow(2, t - 1, 1)?
                .permute((0, 2, 3, 1))?
                .flatten_all()?
        } else {
            x.flatten_all()?
        };
        Ok(x.to_vec1::<f32>()?)
    }
}
