//! Factorize: the best depthwise-separable approximation of a standard convolution kernel.
//!
//! A separable layer's kernel is `W[o, i, t] = P[o, i] D[i, t]` ([`crate::compose`]), so each
//! input channel's slice `W[:, i, :]` (`C_out x k_t k_w`) has rank at most 1. Input channels
//! are independent, hence the best separable approximation in the Frobenius norm is, for each
//! `i`, the best rank-1 approximation of that slice (Eckart-Young): `s1 u1 v1^T` from its SVD
//! (computed in f64 with nalgebra). What is left, `sqrt(sum_i sum_{j>=2} s_j(i)^2)`, is what no
//! separable layer can represent; it is reported relative to `||W||_F`.
//!
//! **Canonical scaling.** `P[:, i] D[i]` only fixes the product: `(a P[:, i], D[i] / a)` is the
//! same layer for any `a != 0`. The factorization returns the representative with
//! - `||D[i]||_2 = 1` (unit-norm depthwise filter, so `P[:, i]` carries the singular value), and
//! - a fixed sign: the first tap of `D[i]` (in `[k_t][k_w]` order) whose magnitude is within
//!   a relative `1e-4` of the largest magnitude is positive.
//!
//! A slice that is all zeros gives `P[:, i] = 0` and `D[i]` = the unit vector on tap 0.
//! Factorizing a composed kernel therefore returns its `P` and `D` up to this scaling, and
//! factorizing the result's composition again returns the same weights.
//!
//! [`factorize_model`] replaces one `conv1d`/`conv2d` layer of a model by its factorization:
//! a `separable1d/2d` layer of the same name when the conv's activation is identity, otherwise
//! a `depthwise1d/2d` layer `NAME_dw` (identity activation) followed by a `pointwise` layer
//! `NAME_pw` carrying the conv's activation. Both are exact for a rank-1-per-channel kernel (the
//! fused separable block would apply a nonlinear activation after the depthwise step too).
//! The depthwise bias is zero and the pointwise bias is the conv's bias.

use nalgebra::DMatrix;

use crate::error::NnError;
use crate::kind::LayerKind;
use crate::layers::{Conv, Depthwise, Op, Pointwise, StreamOp};
use crate::network::Network;
use crate::shape::Activation;
use crate::spec::{LayerSpec, ModelSpec};
use crate::weights::Weights;

/// Relative tolerance of the sign rule's "largest magnitude" (see the module docs).
pub const SIGN_TIE_TOLERANCE: f64 = 1e-4;

/// Why a kernel or a model layer cannot be factorized.
#[derive(Debug, thiserror::Error)]
pub enum FactorizeError {
    #[error("kernel has {actual} values, expected C_out x C_in x taps = {expected}")]
    KernelLength { expected: usize, actual: usize },
    #[error("kernel value {index} is not finite ({value})")]
    NonFinite { index: usize, value: f32 },
    #[error("no layer named `{layer}` (layers: {known})")]
    UnknownLayer { layer: String, known: String },
    #[error("layer {layer}: a {kind} layer is not a standard convolution (factorize takes conv1d/conv2d)")]
    NotStandard { layer: String, kind: LayerKind },
    #[error("layer {layer}: cannot name the replacement `{name}`: another layer has that name")]
    NameTaken { layer: String, name: String },
    #[error(transparent)]
    Nn(#[from] NnError),
}

/// The best separable approximation of a standard kernel, in canonical scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct Factorization {
    pub c_out: usize,
    pub c_in: usize,
    /// Kernel taps per channel (`k_t x k_w`).
    pub taps: usize,
    /// `P`, `[c_out][c_in]`.
    pub pointwise: Vec<f32>,
    /// `D`, `[c_in][taps]`, every row of unit norm.
    pub depthwise: Vec<f32>,
    /// Per input channel, the singular values of its `c_out x taps` slice, descending.
    pub singular_values: Vec<Vec<f64>>,
    /// Per input channel, `sqrt(sum_{j>=2} s_j^2) / ||slice||_F` (0 for a zero slice).
    pub channel_errors: Vec<f64>,
    /// `||W||_F`.
    pub kernel_norm: f64,
    /// `||W - compose(P, D)||_F = sqrt(sum_i sum_{j>=2} s_j(i)^2)`.
    pub error_norm: f64,
    /// `error_norm / kernel_norm` (0 for a zero kernel).
    pub relative_error: f64,
}

impl Factorization {
    /// The separable kernel `P[o, i] D[i, t]`, `[c_out][c_in][taps]`.
    pub fn compose(&self) -> Vec<f32> {
        crate::compose::khatri_rao(
            &self.pointwise,
            &self.depthwise,
            self.c_out,
            self.c_in,
            self.taps,
        )
    }
}

/// Factorizes a kernel `w` in `[c_out][c_in][taps]` layout (PyTorch `[C_out, C_in, k_t, k_w]`
/// flattened).
pub fn factorize_kernel(
    w: &[f32],
    c_out: usize,
    c_in: usize,
    taps: usize,
) -> Result<Factorization, FactorizeError> {
    let expected = c_out * c_in * taps;
    if w.len() != expected {
        return Err(FactorizeError::KernelLength {
            expected,
            actual: w.len(),
        });
    }
    if let Some((index, &value)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(FactorizeError::NonFinite { index, value });
    }
    let mut pointwise = vec![0.0f32; c_out * c_in];
    let mut depthwise = vec![0.0f32; c_in * taps];
    let mut singular_values = Vec::with_capacity(c_in);
    let mut channel_errors = Vec::with_capacity(c_in);
    let mut total_sq = 0.0f64;
    let mut tail_sq = 0.0f64;
    for i in 0..c_in {
        let slice =
            DMatrix::<f64>::from_fn(c_out, taps, |o, t| w[(o * c_in + i) * taps + t] as f64);
        let norm_sq = slice.norm_squared();
        total_sq += norm_sq;
        let (sv, p_col, d_row) = rank_one(slice);
        let tail: f64 = sv.iter().skip(1).map(|s| s * s).sum();
        tail_sq += tail;
        channel_errors.push(if norm_sq > 0.0 {
            (tail / norm_sq).sqrt()
        } else {
            0.0
        });
        for o in 0..c_out {
            pointwise[o * c_in + i] = p_col[o] as f32;
        }
        for t in 0..taps {
            depthwise[i * taps + t] = d_row[t] as f32;
        }
        singular_values.push(sv);
    }
    let kernel_norm = total_sq.sqrt();
    let error_norm = tail_sq.sqrt();
    Ok(Factorization {
        c_out,
        c_in,
        taps,
        pointwise,
        depthwise,
        singular_values,
        channel_errors,
        kernel_norm,
        error_norm,
        relative_error: if kernel_norm > 0.0 {
            error_norm / kernel_norm
        } else {
            0.0
        },
    })
}

/// Singular values (descending) of one slice and its best rank-1 factors in canonical scaling:
/// `(s, p, d)` with `slice ~ p d^T`, `||d|| = 1`, the sign rule applied to `d`.
fn rank_one(slice: DMatrix<f64>) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (rows, cols) = slice.shape();
    let mut unit = vec![0.0; cols];
    if cols > 0 {
        unit[0] = 1.0;
    }
    if rows == 0 || cols == 0 || slice.iter().all(|&v| v == 0.0) {
        let n = rows.min(cols);
        return (vec![0.0; n], vec![0.0; rows], unit);
    }
    let svd = slice.svd(true, true);
    let mut sv: Vec<(usize, f64)> = svd.singular_values.iter().copied().enumerate().collect();
    sv.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (top, sigma) = sv[0];
    let values: Vec<f64> = sv.iter().map(|&(_, s)| s).collect();
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        unreachable!("svd(true, true) computes both U and V^T")
    };
    let mut d: Vec<f64> = v_t.row(top).iter().copied().collect();
    let mut p: Vec<f64> = u.column(top).iter().map(|&x| x * sigma).collect();
    // Renormalize (V^T rows are unit up to rounding) and move the scale into p.
    let dn = d.iter().map(|x| x * x).sum::<f64>().sqrt();
    if dn == 0.0 || sigma == 0.0 {
        return (values, vec![0.0; rows], unit);
    }
    d.iter_mut().for_each(|x| *x /= dn);
    p.iter_mut().for_each(|x| *x *= dn);
    let max = d.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let lead = d
        .iter()
        .position(|x| x.abs() >= max * (1.0 - SIGN_TIE_TOLERANCE))
        .unwrap_or(0);
    if d[lead] < 0.0 {
        d.iter_mut().for_each(|x| *x = -*x);
        p.iter_mut().for_each(|x| *x = -*x);
    }
    (values, p, d)
}

/// A standard convolution's best separable approximation as two layers: a depthwise step
/// (identity activation, zero bias, the conv's geometry) and a pointwise step (the conv's
/// bias and activation). Their composition is [`Factorization::compose`].
pub fn factorize_conv(
    conv: &Conv,
) -> Result<(Depthwise, Pointwise, Factorization), FactorizeError> {
    let g = &conv.geom();
    let (c_in, c_out) = (g.input.channels, conv.out_channels());
    let f = factorize_kernel(conv.weight(), c_out, c_in, g.k_t * g.k_w)?;
    let dw = Depthwise::new(
        (*g).clone(),
        f.depthwise.clone(),
        vec![0.0; c_in],
        Activation::Identity,
    );
    let pw = Pointwise::new(
        dw.output(),
        c_out,
        f.pointwise.clone(),
        conv.bias().to_vec(),
        conv.activation(),
    );
    Ok((dw, pw, f))
}

/// A model in which one standard layer was replaced by its separable approximation.
#[derive(Clone, Debug)]
pub struct FactorizedModel {
    /// The new spec: every layer explicitly named (so tensor names do not shift), the replaced
    /// layer's `weights` path left as in the input (the caller points it at the new file).
    pub spec: ModelSpec,
    pub weights: Weights,
    /// The new network, built from `spec` and `weights` (so both are known to be consistent).
    pub network: Network,
    /// The layer that was replaced.
    pub layer: String,
    /// The names of the layers that replace it.
    pub replacement: Vec<String>,
    pub factorization: Factorization,
}

/// Replaces the standard convolution `layer` of the model (`spec` + `weights`) by its best
/// separable approximation; see the module docs for the layers it becomes.
pub fn factorize_model(
    spec: &ModelSpec,
    weights: &Weights,
    layer: &str,
) -> Result<FactorizedModel, FactorizeError> {
    let net = Network::from_spec_and_tensors(spec.clone(), weights)?;
    let names: Vec<&str> = net.layers().iter().map(|l| l.name.as_str()).collect();
    let index =
        names
            .iter()
            .position(|&n| n == layer)
            .ok_or_else(|| FactorizeError::UnknownLayer {
                layer: layer.to_string(),
                known: names.join(", "),
            })?;
    let target = &net.layers()[index];
    let Op::Conv(conv) = &target.op else {
        return Err(FactorizeError::NotStandard {
            layer: layer.to_string(),
            kind: target.kind,
        });
    };
    let (dw, pw, factorization) = factorize_conv(conv)?;
    let two_d = target.kind.two_d();
    let dw_kind = if two_d {
        LayerKind::Depthwise2d
    } else {
        LayerKind::Depthwise1d
    };

    let old = &spec.layers[index];
    let geometry_of = |kind: LayerKind| LayerSpec {
        kernel: old.kernel,
        stride: old.stride,
        dilation: old.dilation,
        centered: old.centered,
        pad_left: old.pad_left,
        ..LayerSpec::new(kind)
    };
    let mut new_weights = weights.clone();
    new_weights.tensors.remove(&format!("{layer}.weight"));
    new_weights.tensors.remove(&format!("{layer}.bias"));
    let (replacement, prefixes): (Vec<LayerSpec>, [String; 2]) =
        if conv.activation() == Activation::Identity {
            let ls = LayerSpec {
                out_channels: Some(conv.out_channels()),
                ..geometry_of(LayerKind::separable(two_d))
            }
            .named(layer);
            (
                vec![ls],
                [format!("{layer}.depthwise"), format!("{layer}.pointwise")],
            )
        } else {
            let (dw_name, pw_name) = (format!("{layer}_dw"), format!("{layer}_pw"));
            for name in [&dw_name, &pw_name] {
                if names.contains(&name.as_str()) {
                    return Err(FactorizeError::NameTaken {
                        layer: layer.to_string(),
                        name: name.clone(),
                    });
                }
            }
            let d = geometry_of(dw_kind).named(&dw_name);
            let p = LayerSpec::new(LayerKind::Pointwise)
                .named(&pw_name)
                .out_channels(conv.out_channels())
                .activation(conv.activation());
            (vec![d, p], [dw_name, pw_name])
        };
    let [dw_prefix, pw_prefix] = prefixes;
    for (prefix, tensors) in [(dw_prefix, dw.tensors()), (pw_prefix, pw.tensors())] {
        for t in tensors {
            let name = format!("{prefix}.{}", t.suffix);
            new_weights.insert(name, t.shape, t.data.to_vec());
        }
    }

    let mut new_spec = spec.clone();
    let mut layers = Vec::with_capacity(spec.layers.len() + 1);
    for (i, (ls, built)) in spec.layers.iter().zip(net.layers()).enumerate() {
        if i == index {
            layers.extend(replacement.iter().cloned());
        } else {
            layers.push(ls.clone().named(&built.name));
        }
    }
    let replacement_names = replacement.iter().filter_map(|l| l.name.clone()).collect();
    new_spec.layers = layers;
    new_spec.provenance =
        Some(format!(
        "{}; layer {layer} factorized into its best separable approximation (relative Frobenius \
         error {:.6})",
        spec.provenance.as_deref().unwrap_or("weights of unknown provenance"),
        factorization.relative_error
    ));
    let network = Network::from_spec_and_tensors(new_spec.clone(), &new_weights)?;
    Ok(FactorizedModel {
        spec: new_spec,
        weights: new_weights,
        network,
        layer: layer.to_string(),
        replacement: replacement_names,
        factorization,
    })
}
