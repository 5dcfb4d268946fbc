//! The trainable twin of a sepstream-nn model spec in candle: causal convolutions with exactly the
//! engine's padding rules, BatchNorm during training, and export with BatchNorm folded away.
//!
//! Tensors are channels-last, `[batch, time, width, channels]`, the same `[w][c]` order as an
//! engine frame. Convolutions are written as sums of shifted slices and matrix products so the
//! causal (left) time padding and the "same" width padding follow the spec to the letter.

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sepstream_nn::{Activation, LayerKind, LayerSpec, ModelSpec};

use crate::TrainError;

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

type CResult<T> = candle_core::Result<T>;

/// Exported tensors by name: (shape, row-major values).
pub type NamedTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// BatchNorm over the channel (last) axis, with running statistics kept outside the optimizer.
struct BatchNorm {
    gamma: Var,
    beta: Var,
    running_mean: RefCell<Tensor>,
    running_var: RefCell<Tensor>,
}

impl BatchNorm {
    fn new(c: usize, dev: &Device) -> CResult<Self> {
        Ok(Self {
            gamma: Var::ones(c, DType::F32, dev)?,
            beta: Var::zeros(c, DType::F32, dev)?,
            running_mean: RefCell::new(Tensor::zeros(c, DType::F32, dev)?),
            running_var: RefCell::new(Tensor::ones(c, DType::F32, dev)?),
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        let c = x.dim(D::Minus1)?;
        if train {
            let flat = x.reshape(((), c))?;
            let n = flat.dim(0)?;
            let mean = (column_sums(&flat)? / n as f64)?;
            let centered = (&flat - rows(&mean, n)?)?;
            let var = (column_sums(&centered.sqr()?)? / n as f64)?;
            {
                let mut rm = self.running_mean.borrow_mut();
                *rm = ((&*rm * (1.0 - BN_MOMENTUM))? + (mean.detach().reshape(c)? * BN_MOMENTUM)?)?;
                let mut rv = self.running_var.borrow_mut();
                let unbiased = (var.detach().reshape(c)? * (n as f64 / (n as f64 - 1.0).max(1.0)))?;
                *rv = ((&*rv * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?;
            }
            let scale =
                ((var + BN_EPS)?.sqrt()?.recip()? * self.gamma.as_tensor().reshape((1, c))?)?;
            let y = ((centered * rows(&scale, n)?)? + rows(self.beta.as_tensor(), n)?)?;
            y.reshape(x.shape())
        } else {
            let (scale, shift) = self.scale_shift()?;
            x.broadcast_mul(&scale)?.broadcast_add(&shift)
        }
    }

    /// The identity with `bias` added: scale 1 and shift `bias` in inference mode, as a folded
    /// convolution's bias (used when starting from trained weights).
    fn set_to_bias(&self, bias: &Tensor) -> CResult<()> {
        let c = self.gamma.elem_count();
        let dev = bias.device();
        self.gamma.set(&Tensor::ones(c, DType::F32, dev)?)?;
        self.beta.set(&bias.reshape(c)?)?;
        *self.running_mean.borrow_mut() = Tensor::zeros(c, DType::F32, dev)?;
        // scale = gamma / sqrt(var + eps) = 1 exactly.
        *self.running_var.borrow_mut() = Tensor::full((1.0 - BN_EPS) as f32, c, dev)?;
        Ok(())
    }

    /// y = x * scale + shift in inference mode.
    fn scale_shift(&self) -> CResult<(Tensor, Tensor)> {
        let rv = self.running_var.borrow().clone();
        let rm = self.running_mean.borrow().clone();
        let scale = self
            .gamma
            .as_tensor()
            .broadcast_div(&(rv + BN_EPS)?.sqrt()?)?;
        let shift = (self.beta.as_tensor() - (rm * &scale)?)?;
        Ok((scale.detach(), shift.detach()))
    }
}

/// `v` (C values) repeated over `n` rows as an `[n, C]` matrix, made by an outer product with a
/// column of ones. Broadcasting would do the same, but its backward pass sums over the leading
/// axes, which candle's CPU backend does element by element; here the backward pass is a matrix
/// product too (training is several times faster with the 2D layers).
fn rows(v: &Tensor, n: usize) -> CResult<Tensor> {
    let c = v.elem_count();
    Tensor::ones((n, 1), v.dtype(), v.device())?.matmul(&v.reshape((1, c))?)
}

/// Column sums of an `[n, C]` matrix as `[1, C]`, as a matrix product with a row of ones (see
/// [`rows`]).
fn column_sums(x: &Tensor) -> CResult<Tensor> {
    let n = x.dim(0)?;
    Tensor::ones((1, n), x.dtype(), x.device())?.matmul(x)
}

fn act(x: Tensor, a: Activation) -> CResult<Tensor> {
    match a {
        Activation::Identity => Ok(x),
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.clamp(0f32, 6f32),
    }
}

/// `count` positions `start, start+stride, ...` along `dim`.
fn strided(x: &Tensor, dim: usize, start: usize, count: usize, stride: usize) -> CResult<Tensor> {
    if stride == 1 {
        return x.narrow(dim, start, count);
    }
    let avail = x.dim(dim)? - start;
    let need = count * stride;
    let y = if avail >= need {
        x.narrow(dim, start, need)?
    } else {
        x.narrow(dim, start, avail)?
            .pad_with_zeros(dim, 0, need - avail)?
    };
    let mut shape = y.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    y.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Geometry of one convolution along (time, width).
#[derive(Clone, Copy, Debug)]
struct Geom {
    kt: usize,
    kw: usize,
    st: usize,
    sw: usize,
    d: usize,
    /// Zero columns before the first in width (the spec's `pad_left`, else `(kw - 1) / 2`).
    pw: usize,
    one_d: bool,
}

impl Geom {
    /// Pads `x` ([B,T,W,C]) causally in time and "same" in width; returns the padded tensor and
    /// the output (T, W).
    fn pad(&self, x: &Tensor) -> CResult<(Tensor, usize, usize)> {
        let (_, t, w, _) = x.dims4()?;
        let pl = self.pw;
        let pr = self.kw - 1 - pl;
        let xp = x
            .pad_with_zeros(1, (self.kt - 1) * self.d, 0)?
            .pad_with_zeros(2, pl, pr)?;
        Ok((xp, t.div_ceil(self.st), (w - 1) / self.sw + 1))
    }

    /// The input slice seen by tap (a, b) for every output position: [B, T_out, W_out, C].
    fn tap(&self, xp: &Tensor, a: usize, b: usize, to: usize, wo: usize) -> CResult<Tensor> {
        let y = strided(xp, 1, a * self.d, to, self.st)?;
        strided(&y, 2, b, wo, self.sw)
    }
}

enum Op {
    /// Full convolution; weight [C_out, C_in, kt, kw].
    Conv {
        name: String,
        w: Var,
        g: Geom,
        bn: BatchNorm,
        act: Activation,
    },
    /// Depthwise; weight [C, kt, kw].
    Depthwise {
        name: String,
        w: Var,
        g: Geom,
        bn: BatchNorm,
        act: Activation,
    },
    /// Pointwise; weight [C_out, C_in].
    Pointwise {
        name: String,
        w: Var,
        bn: BatchNorm,
        act: Activation,
    },
    Separable {
        name: String,
        dw_w: Var,
        g: Geom,
        dw_bn: BatchNorm,
        pw_w: Var,
        pw_bn: BatchNorm,
        act: Activation,
    },
    Act(Activation),
    AvgPool {
        frames: usize,
    },
    Dense {
        name: String,
        w: Var,
        b: Var,
    },
    Softmax,
    /// `[B, T, W, C]` read as `[B, T, 1, W * C]` (the engine's `flatten`).
    Flatten,
}

/// One convolution's trained weight and the BatchNorm after it (folded together on export).
struct Convolution<'a> {
    /// Its tensors are `{prefix}.weight` and `{prefix}.bias`.
    prefix: String,
    weight: &'a Var,
    bn: &'a BatchNorm,
    /// A 1D layer: its weight's last axis (kernel width 1) is left out of the tensor.
    one_d: bool,
}

/// A trainable model built from a [`ModelSpec`]'s layers.
pub struct KwsModel {
    spec: ModelSpec,
    ops: Vec<Op>,
    vars: Vec<Var>,
    dev: Device,
    /// BatchNorm keeps its statistics fixed and trains only its scale and shift, also while
    /// training (set when the model starts from trained weights, see [`KwsModel::init_from`]).
    frozen_bn: bool,
}

fn kaiming(rng: &mut ChaCha8Rng, shape: &[usize], fan_in: usize, dev: &Device) -> CResult<Var> {
    let n: usize = shape.iter().product();
    let bound = (6.0 / fan_in as f64).sqrt() as f32;
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, dev)?)
}

fn unsupported(i: usize, what: &str) -> TrainError {
    TrainError::Spec(format!("layer {i}: {what}"))
}

impl KwsModel {
    /// Builds the trainable model for `spec` with seeded random weights.
    pub fn new(spec: &ModelSpec, seed: u64) -> Result<Self, TrainError> {
        let dev = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ops = Vec::new();
        let mut vars = Vec::new();
        let mut w = spec.input.width;
        let mut c = spec.input.channels;
        let mut pooled = false;
        for (i, l) in spec.layers.iter().enumerate() {
            let name = l.name.clone().unwrap_or_else(|| format!("{}{}", l.kind, i));
            let a = l.activation.unwrap_or_default();
            if l.centered == Some(true) {
                return Err(unsupported(i, "centered kernels are not trained here"));
            }
            if l.groups.is_some_and(|g| g != 1) {
                return Err(unsupported(
                    i,
                    "grouped pointwise layers are not trained here (they come from `sepstream \
                     ensemble`; train the members)",
                ));
            }
            let two_d = l.kind.two_d();
            let geom = |l: &LayerSpec| -> Result<Geom, TrainError> {
                let (kt, kw) = l
                    .kernel
                    .ok_or_else(|| unsupported(i, "kernel missing"))?
                    .pair(two_d);
                let (st, sw) = l.stride.map_or((1, 1), |s| s.pair(two_d));
                let pw = l.pad_left.unwrap_or((kw - 1) / 2);
                if pw >= kw {
                    return Err(unsupported(i, "pad_left must be below the kernel width"));
                }
                Ok(Geom {
                    kt,
                    kw,
                    st,
                    sw,
                    d: l.dilation.unwrap_or(1),
                    pw,
                    one_d: !two_d,
                })
            };
            if pooled
                && !matches!(
                    l.kind,
                    LayerKind::Dense
                        | LayerKind::Softmax
                        | LayerKind::Relu
                        | LayerKind::Relu6
                        | LayerKind::Identity
                )
            {
                return Err(unsupported(
                    i,
                    "only dense/softmax/activations may follow avgpool",
                ));
            }
            let op = match l.kind {
                LayerKind::Conv1d | LayerKind::Conv2d => {
                    let g = geom(l)?;
                    let co = l
                        .out_channels
                        .ok_or_else(|| unsupported(i, "out_channels missing"))?;
                    let wv = kaiming(&mut rng, &[co, c, g.kt, g.kw], c * g.kt * g.kw, &dev)?;
                    let bn = BatchNorm::new(co, &dev)?;
                    vars.extend([wv.clone(), bn.gamma.clone(), bn.beta.clone()]);
                    w = (w - 1) / g.sw + 1;
                    c = co;
                    Op::Conv {
                        name,
                        w: wv,
                        g,
                        bn,
                        act: a,
                    }
                }
                LayerKind::Depthwise1d | LayerKind::Depthwise2d => {
                    let g = geom(l)?;
                    let wv = kaiming(&mut rng, &[c, g.kt, g.kw], g.kt * g.kw, &dev)?;
                    let bn = BatchNorm::new(c, &dev)?;
                    vars.extend([wv.clone(), bn.gamma.clone(), bn.beta.clone()]);
                    w = (w - 1) / g.sw + 1;
                    Op::Depthwise {
                        name,
                        w: wv,
                        g,
                        bn,
                        act: a,
                    }
                }
                LayerKind::Pointwise => {
                    let co = l
                        .out_channels
                        .ok_or_else(|| unsupported(i, "out_channels missing"))?;
                    let wv = kaiming(&mut rng, &[co, c], c, &dev)?;
                    let bn = BatchNorm::new(co, &dev)?;
                    vars.extend([wv.clone(), bn.gamma.clone(), bn.beta.clone()]);
                    c = co;
                    Op::Pointwise {
                        name,
                        w: wv,
                        bn,
                        act: a,
                    }
                }
                LayerKind::Separable1d | LayerKind::Separable2d => {
                    let g = geom(l)?;
                    let co = l.out_channels.unwrap_or(c);
                    let dw_w = kaiming(&mut rng, &[c, g.kt, g.kw], g.kt * g.kw, &dev)?;
                    let dw_bn = BatchNorm::new(c, &dev)?;
                    let pw_w = kaiming(&mut rng, &[co, c], c, &dev)?;
                    let pw_bn = BatchNorm::new(co, &dev)?;
                    vars.extend([
                        dw_w.clone(),
                        dw_bn.gamma.clone(),
                        dw_bn.beta.clone(),
                        pw_w.clone(),
                        pw_bn.gamma.clone(),
                        pw_bn.beta.clone(),
                    ]);
                    w = (w - 1) / g.sw + 1;
                    c = co;
                    Op::Separable {
                        name,
                        dw_w,
                        g,
                        dw_bn,
                        pw_w,
                        pw_bn,
                        act: a,
                    }
                }
                LayerKind::Relu => Op::Act(Activation::Relu),
                LayerKind::Relu6 => Op::Act(Activation::Relu6),
                LayerKind::Identity => Op::Act(Activation::Identity),
                LayerKind::Avgpool => {
                    let frames = l
                        .frames
                        .ok_or_else(|| unsupported(i, "avgpool needs frames"))?;
                    if frames == 0 {
                        return Err(unsupported(i, "avgpool frames must be > 0"));
                    }
                    pooled = true;
                    w = 1;
                    Op::AvgPool { frames }
                }
                LayerKind::Dense => {
                    if !pooled {
                        return Err(unsupported(i, "dense is trained only after avgpool"));
                    }
                    let units = l.units.ok_or_else(|| unsupported(i, "dense needs units"))?;
                    let fan = w * c;
                    let wv = kaiming(&mut rng, &[units, fan], fan, &dev)?;
                    let b = Var::zeros(units, DType::F32, &dev)?;
                    vars.extend([wv.clone(), b.clone()]);
                    w = 1;
                    c = units;
                    Op::Dense { name, w: wv, b }
                }
                LayerKind::Softmax => Op::Softmax,
                LayerKind::Flatten => {
                    c *= w;
                    w = 1;
                    Op::Flatten
                }
                kind => {
                    return Err(unsupported(
                        i,
                        &format!("{kind} layers are not trained here"),
                    ))
                }
            };
            ops.push(op);
        }
        if !pooled {
            return Err(TrainError::Spec(
                "the model needs an avgpool layer (training reads the last frame)".into(),
            ));
        }
        Ok(Self {
            spec: spec.clone(),
            ops,
            vars,
            dev,
            frozen_bn: false,
        })
    }

    /// Starts from trained weights (e.g. an imported graph's, BatchNorm already folded in):
    /// `weights` must hold exactly the tensors this model exports, with the same shapes. Each
    /// BatchNorm becomes the identity plus the folded bias, and from then on keeps its
    /// statistics fixed (a per-channel scale and shift that train), so the model computes what
    /// the weights computed until the optimizer moves them. `origin` names the source in errors.
    pub fn init_from(
        &mut self,
        weights: &sepstream_nn::Weights,
        origin: &std::path::Path,
    ) -> Result<(), TrainError> {
        let want = self.export_tensors()?;
        let bad = |what: String| TrainError::Spec(format!("{}: {what}", origin.display()));
        for (name, (shape, _)) in &want {
            match weights.tensors.get(name) {
                None => {
                    return Err(bad(format!(
                        "no tensor `{name}` (this model needs shape {shape:?})"
                    )))
                }
                Some(t) if &t.shape != shape => {
                    return Err(bad(format!(
                        "tensor `{name}` has shape {:?}, this model needs {shape:?}",
                        t.shape
                    )))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = weights.tensors.keys().find(|k| !want.contains_key(*k)) {
            return Err(bad(format!(
                "tensor `{extra}` belongs to no layer of {}",
                self.spec.name
            )));
        }
        let dev = self.dev.clone();
        let get = |name: String| -> CResult<Tensor> {
            let t = &weights.tensors[&name];
            Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev)
        };
        let set = |v: &Var, name: String| -> CResult<()> { v.set(&get(name)?.reshape(v.shape())?) };
        for c in self.convolutions() {
            set(c.weight, format!("{}.weight", c.prefix))?;
            c.bn.set_to_bias(&get(format!("{}.bias", c.prefix))?)?;
        }
        for op in &self.ops {
            if let Op::Dense { name, w, b } = op {
                set(w, format!("{name}.weight"))?;
                set(b, format!("{name}.bias"))?;
            }
        }
        self.frozen_bn = true;
        Ok(())
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    pub fn device(&self) -> &Device {
        &self.dev
    }
    /// Number of trainable values.
    pub fn num_params(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    /// Logits (before any softmax layer) at the LAST frame of each sequence.
    /// `x`: [B, T, width, channels]. Returns [B, outputs].
    pub fn forward(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        self.forward_inner(x, train, false, None)
    }

    /// Training forward pass with dropout of probability `p` on the pooled features (the
    /// input of the layers after the avgpool), drawn from `rng`; `p = 0` is `forward(x, true)`.
    pub fn forward_dropout(&self, x: &Tensor, p: f64, rng: &mut ChaCha8Rng) -> CResult<Tensor> {
        self.forward_inner(x, true, false, (p > 0.0).then_some((p, rng)))
    }

    /// Like [`forward`](Self::forward) but applies the spec's softmax too (inference output).
    pub fn forward_probs(&self, x: &Tensor) -> CResult<Tensor> {
        self.forward_inner(x, false, true, None)
    }

    fn forward_inner(
        &self,
        x: &Tensor,
        train: bool,
        softmax: bool,
        mut dropout: Option<(f64, &mut ChaCha8Rng)>,
    ) -> CResult<Tensor> {
        // Batch statistics only while training and only when BatchNorm is not frozen.
        let train = train && !self.frozen_bn;
        let mut x = x.clone();
        for op in &self.ops {
            x = match op {
                Op::Conv {
                    w, g, bn, act: a, ..
                } => {
                    let (xp, to, wo) = g.pad(&x)?;
                    let mut taps = Vec::with_capacity(g.kt * g.kw);
                    for ta in 0..g.kt {
                        for tb in 0..g.kw {
                            taps.push(g.tap(&xp, ta, tb, to, wo)?);
                        }
                    }
                    let cols = Tensor::cat(&taps, 3)?; // [B,To,Wo,(a,b,ci)]
                    let (co, ci, kt, kw) = w.dims4()?;
                    let m = w.permute((2, 3, 1, 0))?.reshape((kt * kw * ci, co))?;
                    let (bsz, _, _, k) = cols.dims4()?;
                    let y = cols.reshape((bsz * to * wo, k))?.matmul(&m)?;
                    let y = y.reshape((bsz, to, wo, co))?;
                    act(bn.forward(&y, train)?, *a)?
                }
                Op::Depthwise {
                    w, g, bn, act: a, ..
                } => {
                    let y = depthwise(&x, w, g)?;
                    act(bn.forward(&y, train)?, *a)?
                }
                Op::Pointwise { w, bn, act: a, .. } => {
                    let y = pointwise(&x, w)?;
                    act(bn.forward(&y, train)?, *a)?
                }
                Op::Separable {
                    dw_w,
                    g,
                    dw_bn,
                    pw_w,
                    pw_bn,
                    act: a,
                    ..
                } => {
                    let y = act(dw_bn.forward(&depthwise(&x, dw_w, g)?, train)?, *a)?;
                    act(pw_bn.forward(&pointwise(&y, pw_w)?, train)?, *a)?
                }
                Op::Act(a) => act(x, *a)?,
                Op::Flatten => {
                    let (bsz, t, wd, c) = x.dims4()?;
                    x.reshape((bsz, t, 1, wd * c))?
                }
                Op::AvgPool { frames } => {
                    let (_, t, w, _) = x.dims4()?;
                    let n = (*frames).min(t);
                    let s = x.narrow(1, t - n, n)?.sum_keepdim(1)?.sum_keepdim(2)?;
                    let pooled = (s / ((*frames * w) as f64))?;
                    match dropout.take() {
                        Some((p, rng)) => {
                            let (bsz, _, _, c) = pooled.dims4()?;
                            let keep = 1.0 - p;
                            let mask: Vec<f32> = (0..bsz * c)
                                .map(|_| {
                                    if rng.random::<f64>() < keep {
                                        (1.0 / keep) as f32
                                    } else {
                                        0.0
                                    }
                                })
                                .collect();
                            let mask = Tensor::from_vec(mask, (bsz, 1, 1, c), pooled.device())?;
                            (pooled * mask)?
                        }
                        None => pooled,
                    }
                }
                Op::Dense { w, b, .. } => {
                    let (bsz, t, wd, c) = x.dims4()?;
                    let flat = x.reshape((bsz * t, wd * c))?;
                    let y = flat.matmul(&w.t()?)?.broadcast_add(b.as_tensor())?;
                    y.reshape((bsz, t, 1, ()))?
                }
                Op::Softmax => {
                    if softmax {
                        let (bsz, t, wd, c) = x.dims4()?;
                        candle_nn::ops::softmax_last_dim(&x.reshape((bsz, t, wd * c))?)?
                            .reshape((bsz, t, 1, wd * c))?
                    } else {
                        x
                    }
                }
            };
        }
        let (bsz, t, wd, c) = x.dims4()?;
        x.narrow(1, t - 1, 1)?.reshape((bsz, wd * c))
    }

    /// The folded inference weights, named as sepstream-nn expects (BatchNorm folded in).
    pub fn export_tensors(&self) -> Result<NamedTensors, TrainError> {
        let mut out = BTreeMap::new();
        let mut put = |name: String, t: Tensor| -> CResult<()> {
            let shape = t.dims().to_vec();
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            out.insert(name, (shape, v));
            Ok(())
        };
        for c in self.convolutions() {
            let (scale, bias) = c.bn.scale_shift()?;
            let w = c.weight.as_tensor();
            // One scale per output channel (axis 0), over the rest of the weight.
            let mut shape = vec![1; w.rank()];
            shape[0] = scale.elem_count();
            let folded = w.broadcast_mul(&scale.reshape(shape)?)?;
            // A 1D layer's kernel has width 1 (the last axis), which its tensor leaves out.
            let folded = if c.one_d {
                folded.squeeze(w.rank() - 1)?
            } else {
                folded
            };
            put(format!("{}.weight", c.prefix), folded)?;
            put(format!("{}.bias", c.prefix), bias)?;
        }
        for op in &self.ops {
            if let Op::Dense { name, w, b } = op {
                put(format!("{name}.weight"), w.as_tensor().clone())?;
                put(format!("{name}.bias"), b.as_tensor().clone())?;
            }
        }
        Ok(out)
    }

    /// All trained state (weights and BatchNorm statistics), to snapshot the best epoch.
    pub fn snapshot(&self) -> Result<Vec<Tensor>, TrainError> {
        let mut v: Vec<Tensor> = self
            .vars
            .iter()
            .map(|x| x.as_tensor().copy())
            .collect::<CResult<_>>()?;
        for bn in self.bns() {
            v.push(bn.running_mean.borrow().copy()?);
            v.push(bn.running_var.borrow().copy()?);
        }
        Ok(v)
    }

    /// Restores a [`snapshot`](Self::snapshot).
    pub fn restore(&self, snap: &[Tensor]) -> Result<(), TrainError> {
        let nv = self.vars.len();
        for (v, t) in self.vars.iter().zip(snap) {
            v.set(t)?;
        }
        for (i, bn) in self.bns().into_iter().enumerate() {
            *bn.running_mean.borrow_mut() = snap[nv + 2 * i].clone();
            *bn.running_var.borrow_mut() = snap[nv + 2 * i + 1].clone();
        }
        Ok(())
    }

    fn bns(&self) -> Vec<&BatchNorm> {
        self.convolutions().into_iter().map(|c| c.bn).collect()
    }

    /// Every convolution weight with its BatchNorm, in layer order (a separable layer gives its
    /// depthwise then its pointwise half), named as its tensors are.
    fn convolutions(&self) -> Vec<Convolution<'_>> {
        let mut v = Vec::new();
        for op in &self.ops {
            match op {
                Op::Conv { name, w, bn, g, .. } | Op::Depthwise { name, w, bn, g, .. } => {
                    v.push(Convolution {
                        prefix: name.clone(),
                        weight: w,
                        bn,
                        one_d: g.one_d,
                    })
                }
                Op::Pointwise { name, w, bn, .. } => v.push(Convolution {
                    prefix: name.clone(),
                    weight: w,
                    bn,
                    one_d: false,
                }),
                Op::Separable {
                    name,
                    dw_w,
                    g,
                    dw_bn,
                    pw_w,
                    pw_bn,
                    ..
                } => {
                    v.push(Convolution {
                        prefix: format!("{name}.depthwise"),
                        weight: dw_w,
                        bn: dw_bn,
                        one_d: g.one_d,
                    });
                    v.push(Convolution {
                        prefix: format!("{name}.pointwise"),
                        weight: pw_w,
                        bn: pw_bn,
                        one_d: false,
                    });
                }
                Op::Act(_) | Op::AvgPool { .. } | Op::Dense { .. } | Op::Softmax | Op::Flatten => {}
            }
        }
        v
    }

    /// Safetensors bytes of [`export_tensors`](Self::export_tensors).
    pub fn export_safetensors(&self) -> Result<Vec<u8>, TrainError> {
        let tensors = self.export_tensors()?;
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(k, (shape, v))| {
                let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (k, shape, b)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(k, shape, b)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| TrainError::Export(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        safetensors::serialize(views, None).map_err(|e| TrainError::Export(e.to_string()))
    }
}

/// Depthwise conv as a sum of shifted slices times per-channel weights.
fn depthwise(x: &Tensor, w: &Var, g: &Geom) -> CResult<Tensor> {
    let (xp, to, wo) = g.pad(x)?;
    let (bsz, _, _, _) = x.dims4()?;
    let (c, kt, kw) = w.dims3()?;
    let n = bsz * to * wo;
    let wt = w.as_tensor();
    let mut acc: Option<Tensor> = None;
    for a in 0..kt {
        for b in 0..kw {
            let tap = g.tap(&xp, a, b, to, wo)?.reshape((n, c))?;
            let k = wt.narrow(1, a, 1)?.narrow(2, b, 1)?.reshape(c)?;
            let term = (tap * rows(&k, n)?)?;
            acc = Some(match acc {
                None => term,
                Some(s) => (s + term)?,
            });
        }
    }
    acc.ok_or_else(|| candle_core::Error::Msg("empty kernel".into()))?
        .reshape((bsz, to, wo, c))
}

/// Pointwise: matrix product over the channel axis.
fn pointwise(x: &Tensor, w: &Var) -> CResult<Tensor> {
    let (bsz, t, wd, ci) = x.dims4()?;
    let co = w.dim(0)?;
    x.reshape((bsz * t * wd, ci))?
        .matmul(&w.as_tensor().t()?)?
        .reshape((bsz, t, wd, co))
}
