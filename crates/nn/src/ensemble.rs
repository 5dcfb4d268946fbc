//! Ensembles as one network: K members of one architecture side by side, their logits averaged.
//!
//! Every member reads the same input frame. The first layer with weights (a standard conv, a
//! pointwise or a dense layer) is stacked along its output channels, so member `m` owns channels
//! `m*C .. (m+1)*C` of every frame after it; later pointwise mixing (a pointwise layer or the
//! pointwise half of a separable one) becomes grouped, K times the member's groups, so member m
//! mixes only its own channels; a depthwise layer is stacked (it is per channel anyway); a later
//! standard conv is block-diagonal (zeros and all). The last layer with weights (dense or
//! pointwise, identity activation) takes every member's block with its weights divided by K and
//! the mean of the biases, so it outputs the mean of the members' outputs. Layers after it (the
//! softmax) are shared. The merged network streams like any other: same strides, receptive field
//! and delay, K times the state, and K times the members' weights and FLOPs.

use crate::error::NnError;
use crate::layers::Op;
use crate::network::Network;
use crate::spec::ModelSpec;
use crate::weights::{Tensor, Weights};

/// Why a set of networks cannot be merged (or which member differs).
fn invalid(reason: String) -> NnError {
    NnError::InvalidSpec(format!("ensemble: {reason}"))
}

/// The first member's spec with everything that must agree (input, layers, labels, front end,
/// decisions); names, descriptions, weights files and provenance may differ.
fn architecture(spec: &ModelSpec) -> ModelSpec {
    ModelSpec {
        name: String::new(),
        description: None,
        weights: None,
        provenance: None,
        ..spec.clone()
    }
}

/// Rows of every member's tensor one after the other (axis 0 concatenated).
fn stacked(ts: &[&Tensor]) -> Tensor {
    let mut shape = ts[0].shape.clone();
    shape[0] *= ts.len();
    Tensor::new(
        shape,
        ts.iter().flat_map(|t| t.data.iter().copied()).collect(),
    )
}

/// `[Co, Ci, rest..]` weights of K members as one `[K*Co, K*Ci, rest..]` block-diagonal weight.
fn block_diagonal(ts: &[&Tensor]) -> Tensor {
    let k = ts.len();
    let (co, ci) = (ts[0].shape[0], ts[0].shape[1]);
    let rest: usize = ts[0].shape[2..].iter().product();
    let mut shape = ts[0].shape.clone();
    shape[0] *= k;
    shape[1] *= k;
    let mut data = vec![0.0; k * co * k * ci * rest];
    for (m, t) in ts.iter().enumerate() {
        for o in 0..co {
            for i in 0..ci {
                let src = (o * ci + i) * rest;
                let dst = ((m * co + o) * k * ci + m * ci + i) * rest;
                data[dst..dst + rest].copy_from_slice(&t.data[src..src + rest]);
            }
        }
    }
    Tensor::new(shape, data)
}

/// `[U, W*C]` weights of K members reading `[w][c]` frames, as one `[U, W*K*C]` weight reading
/// the merged `[w][m*C + c]` frame, each divided by K: the mean of the members' outputs.
fn averaged_columns(ts: &[&Tensor], width: usize) -> Tensor {
    let k = ts.len();
    let (u, n) = (ts[0].shape[0], ts[0].shape[1]);
    let c = n / width;
    let mut data = vec![0.0; u * k * n];
    for (m, t) in ts.iter().enumerate() {
        for row in 0..u {
            for w in 0..width {
                for ch in 0..c {
                    data[row * k * n + w * k * c + m * c + ch] =
                        t.data[row * n + w * c + ch] / k as f32;
                }
            }
        }
    }
    Tensor::new(vec![u, k * n], data)
}

/// The element-wise mean of the members' tensors.
fn mean(ts: &[&Tensor]) -> Tensor {
    let k = ts.len() as f32;
    let data = (0..ts[0].data.len())
        .map(|i| ts.iter().map(|t| t.data[i]).sum::<f32>() / k)
        .collect();
    Tensor::new(ts[0].shape.clone(), data)
}

/// Merges `members` (one architecture, independently trained weights) into one network whose
/// output is the mean of theirs at the last layer with weights (the logits, before a softmax).
pub fn merge(members: &[Network]) -> Result<Network, NnError> {
    let first = members
        .first()
        .ok_or_else(|| invalid("no members".into()))?;
    let k = members.len();
    let arch = architecture(first.spec());
    for (m, net) in members.iter().enumerate().skip(1) {
        let other = architecture(net.spec());
        if other.input != arch.input || other.layers != arch.layers || other.labels != arch.labels {
            return Err(invalid(format!(
                "member {} ({}) has another architecture than member 1 ({})",
                m + 1,
                net.spec().name,
                first.spec().name
            )));
        }
        if other.frontend != arch.frontend {
            return Err(invalid(format!(
                "member {} ({}) has another [frontend] than member 1: its feature mean/std come \
                 from another training split (train every member with the same --split-seed)",
                m + 1,
                net.spec().name
            )));
        }
        if other.decision != arch.decision {
            return Err(invalid(format!(
                "member {} ({}) has other [decision] settings than member 1",
                m + 1,
                net.spec().name
            )));
        }
    }
    let weights: Vec<Weights> = members.iter().map(Network::weights).collect();
    let get = |name: &str| -> Vec<&Tensor> { weights.iter().map(|w| &w.tensors[name]).collect() };
    let last_weighted = first
        .layers()
        .iter()
        .rposition(|l| l.params() > 0)
        .ok_or_else(|| invalid("the members have no layer with weights".into()))?;

    let mut spec = first.spec().clone();
    spec.name = format!("{}_x{k}", first.spec().name);
    spec.description = Some(format!(
        "{} (an ensemble of {k} independently trained members in one network: block-diagonal \
         weights, the members' logits averaged)",
        first
            .spec()
            .description
            .as_deref()
            .unwrap_or(&first.spec().name)
    ));
    spec.weights = None;
    spec.provenance = None;
    let mut merged = Weights::default();
    let fail = |layer: &str, what: &str| {
        Err(NnError::InvalidLayer {
            layer: layer.to_string(),
            reason: format!("ensemble: {what}"),
        })
    };
    // Whether the frames between layers hold K member blocks (after the first weighted layer).
    let mut replicated = false;
    // Every layer before the last weighted one gives each member its own channels; the layers
    // after it have no weights and stay as they are.
    for (i, layer) in first.layers()[..last_weighted].iter().enumerate() {
        let n = layer.name.as_str();
        // K times the channels; a pointwise half mixing member blocks gets K times the groups.
        let mut scale_out = |groups: Option<usize>| {
            let ls = &mut spec.layers[i];
            if let Some(c) = ls.out_channels.as_mut() {
                *c *= k;
            }
            if let Some(g) = groups {
                ls.groups = Some(g * k);
            }
        };
        match &layer.op {
            Op::Dense(_) => return fail(n, "dense layers before the last one are not merged"),
            Op::Conv(_) | Op::Pointwise(_) => {
                let (w, b) = (format!("{n}.weight"), format!("{n}.bias"));
                let (wt, groups) = match &layer.op {
                    Op::Pointwise(p) if replicated => (stacked(&get(&w)), Some(p.groups())),
                    Op::Pointwise(p) if p.groups() > 1 => {
                        return fail(n, "a grouped pointwise cannot be the first weighted layer")
                    }
                    _ if replicated => (block_diagonal(&get(&w)), None),
                    _ => (stacked(&get(&w)), None),
                };
                merged.tensors.insert(w, wt);
                let bt = stacked(&get(&b));
                merged.tensors.insert(b, bt);
                scale_out(groups);
                replicated = true;
            }
            Op::Depthwise(_) | Op::Separable(_) => {
                if !replicated {
                    return fail(
                        n,
                        "the first layer with weights must be a standard conv or pointwise \
                         (a depthwise layer cannot give each member its own channels)",
                    );
                }
                let separable = matches!(layer.op, Op::Separable(_));
                let prefix = if separable {
                    format!("{n}.depthwise")
                } else {
                    n.to_string()
                };
                for t in ["weight", "bias"] {
                    let name = format!("{prefix}.{t}");
                    let st = stacked(&get(&name));
                    merged.tensors.insert(name, st);
                }
                if let Op::Separable(s) = &layer.op {
                    let (w, b) = (
                        format!("{n}.pointwise.weight"),
                        format!("{n}.pointwise.bias"),
                    );
                    let (wt, bt) = (stacked(&get(&w)), stacked(&get(&b)));
                    merged.tensors.insert(w, wt);
                    merged.tensors.insert(b, bt);
                    scale_out(Some(s.pointwise().groups()));
                }
            }
            // No weights and every channel stays a channel: it serves the K member blocks as
            // they are (activations, pooling, a flatten of width 1). Before the first weighted
            // layer there is one block, whatever the layout.
            _ if layer.params() == 0
                && (!replicated || layer.output().channels == layer.input().channels) => {}
            _ if layer.params() == 0 => {
                return fail(
                    n,
                    &format!(
                        "a {} layer that changes the channel count would interleave the members",
                        layer.kind
                    ),
                );
            }
            _ => return fail(n, &format!("{} layers are not merged", layer.kind)),
        }
    }

    // The last weighted layer reads every member's block and outputs their mean.
    let layer = &first.layers()[last_weighted];
    let n = layer.name.as_str();
    if !replicated {
        return fail(
            n,
            "a model with a single weighted layer is a linear model: average its weights instead",
        );
    }
    let width = match &layer.op {
        Op::Dense(d) if d.activation() == crate::Activation::Identity => d.input().width,
        // Applied at every width position alike: its columns are member channels.
        Op::Pointwise(p) if p.activation() == crate::Activation::Identity => 1,
        _ => {
            return fail(
                n,
                "the last layer with weights must be dense or pointwise with no activation \
                 (the logits are averaged)",
            )
        }
    };
    let (w, b) = (format!("{n}.weight"), format!("{n}.bias"));
    let (wt, bt) = (averaged_columns(&get(&w), width), mean(&get(&b)));
    merged.tensors.insert(w, wt);
    merged.tensors.insert(b, bt);
    Network::from_spec_and_tensors(spec, &merged)
}
