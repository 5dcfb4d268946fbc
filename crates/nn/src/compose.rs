//! Compose: the standard convolution a depthwise-separable layer is equal to.
//!
//! A separable layer with depthwise filters `D[i, x, y]` (`C_in x k_t x k_w`) and pointwise
//! matrix `P[o, i]` (`C_out x C_in`) computes, when nothing nonlinear sits between the two steps,
//! the standard convolution with kernel
//!
//! ```text
//! W[o, i, x, y] = P[o, i] * D[i, x, y]        bias = P . b_dw + b_pw
//! ```
//!
//! i.e. column `i` of `P` times the flattened filter `D[i]`: a column-wise Khatri-Rao product of
//! `P` and the flattened depthwise filters. Every slice `W[:, i, :, :]` (a `C_out x k_t k_w`
//! matrix) therefore has rank at most 1; [`crate::factorize`] goes the other way.
//!
//! **Exactness.** sepstream's fused separable block applies its activation twice (after the
//! depthwise step and after the pointwise step). Composition is exact when the *inner*
//! (depthwise) activation is identity; the outer activation becomes the standard layer's
//! activation. A layer with a nonlinear inner activation is rejected with
//! [`ComposeError::NonlinearInner`] (its linear part alone would not compute the same thing).
//! Zero padding (causal in time, "same" along width) and strides are the same for the composed
//! layer, and the depthwise bias is added at every position in both forms, so the equality holds
//! at the edges too.

use crate::kind::LayerKind;
use crate::layers::{Conv, Depthwise, Layer, Op, Pointwise};
use crate::shape::Activation;

/// Why a layer cannot be composed into a standard convolution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "layer {layer}: a {kind} layer is not separable (compose takes separable1d/separable2d)"
    )]
    NotSeparable { layer: String, kind: LayerKind },
    #[error(
        "layer {layer}: the depthwise step is followed by `{activation}`, so the layer is not a \
         linear convolution; compose is exact only with an identity inner activation"
    )]
    NonlinearInner {
        layer: String,
        activation: &'static str,
    },
    #[error(
        "layer {layer}: the pointwise step reads {pointwise_in} channels but the depthwise step \
         gives {depthwise_out}"
    )]
    ChannelMismatch {
        layer: String,
        depthwise_out: usize,
        pointwise_in: usize,
    },
}

/// `W[o, i, t] = P[o, i] * D[i, t]`: `p` is `[c_out][c_in]`, `d` is `[c_in][taps]`, the result
/// is `[c_out][c_in][taps]` (PyTorch layout once `taps` is split into `k_t x k_w`).
///
/// # Panics
/// If the slice lengths do not match the sizes (a programming error, not bad input).
pub fn khatri_rao(p: &[f32], d: &[f32], c_out: usize, c_in: usize, taps: usize) -> Vec<f32> {
    assert_eq!(p.len(), c_out * c_in, "pointwise matrix length");
    assert_eq!(d.len(), c_in * taps, "depthwise filters length");
    let mut w = Vec::with_capacity(c_out * c_in * taps);
    for o in 0..c_out {
        for i in 0..c_in {
            let scale = p[o * c_in + i];
            w.extend(d[i * taps..(i + 1) * taps].iter().map(|&v| scale * v));
        }
    }
    w
}

/// The composed bias `P . b_dw + b_pw` (`[c_out]`).
pub fn composed_bias(p: &[f32], b_dw: &[f32], b_pw: &[f32]) -> Vec<f32> {
    let c_in = b_dw.len();
    b_pw.iter()
        .enumerate()
        .map(|(o, &b)| {
            // f64 accumulation: the composed bias is as exact as the kernel.
            let s: f64 = (0..c_in)
                .map(|i| p[o * c_in + i] as f64 * b_dw[i] as f64)
                .sum();
            (s + b as f64) as f32
        })
        .collect()
}

/// The standard convolution equal to `depthwise` (with identity activation) followed by
/// `pointwise`; its activation is the pointwise step's. `layer` names the layer in errors.
pub fn compose_parts(
    layer: &str,
    depthwise: &Depthwise,
    pointwise: &Pointwise,
) -> Result<Conv, ComposeError> {
    if depthwise.activation() != Activation::Identity {
        return Err(ComposeError::NonlinearInner {
            layer: layer.to_string(),
            activation: depthwise.activation().name(),
        });
    }
    let g = &depthwise.geom();
    let (c_in, c_out) = (g.input.channels, pointwise.out_channels());
    if pointwise.input().channels != c_in {
        return Err(ComposeError::ChannelMismatch {
            layer: layer.to_string(),
            depthwise_out: c_in,
            pointwise_in: pointwise.input().channels,
        });
    }
    // A grouped pointwise composes like the dense matrix with zeros between its groups.
    let pw_weight = pointwise.dense_weight();
    let weight = khatri_rao(&pw_weight, depthwise.weight(), c_out, c_in, g.k_t * g.k_w);
    let bias = composed_bias(&pw_weight, depthwise.bias(), pointwise.bias());
    Ok(Conv::new(
        (*g).clone(),
        c_out,
        weight,
        bias,
        pointwise.activation(),
    ))
}

/// The standard layer equal to a separable layer: same name, kind `conv1d`/`conv2d`, weights
/// `P[o,i] D[i,x,y]`, bias `P b_dw + b_pw`, the separable layer's (outer) activation. Its
/// tensors are `NAME.weight` and `NAME.bias`, as [`crate::Network::weights`] writes them.
pub fn compose_layer(layer: &Layer) -> Result<Layer, ComposeError> {
    let Op::Separable(s) = &layer.op else {
        return Err(ComposeError::NotSeparable {
            layer: layer.name.clone(),
            kind: layer.kind,
        });
    };
    let conv = compose_parts(&layer.name, s.depthwise(), s.pointwise())?;
    let kind = LayerKind::standard_conv(layer.kind.two_d());
    Ok(Layer::new(layer.name.clone(), kind, conv))
}
