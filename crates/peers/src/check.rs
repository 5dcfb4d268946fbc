//! Output agreement: every peer (and sepstream's offline forward) against sepstream's streaming output on the same frames.
//!
//! Hop `k` of a stream of frames ends on frame `window - 1 + k * time_stride`; its reference
//! output is the one `Network::step` returns there. The whole-window columns run over the
//! `window` frames ending on that frame; tract's pulse mode takes the stream from its start.

use sepstream_nn::Network;

use crate::{window_frames, CandleNet, PeerError, TractNet, TractPulse};

/// Largest |a - b| over two outputs; infinite when their lengths differ or any is NaN.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}

/// `n` input frames of `net`, uniform in [-2, 2), the same on every run (an LCG).
pub fn test_frames(net: &Network, n: usize) -> Vec<f32> {
    let mut s: u32 = 0x9e37_79b9;
    (0..n * net.input_shape().len())
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

/// The same layers and weights with a final softmax removed: the logits, whose differences
/// a saturated or near-uniform softmax would hide.
pub fn without_softmax(net: &Network) -> Result<Network, PeerError> {
    let mut spec = net.spec().clone();
    if spec
        .layers
        .last()
        .is_some_and(|l| l.kind == sepstream_nn::LayerKind::Softmax)
    {
        spec.layers.pop();
    }
    Ok(Network::from_spec_and_tensors(spec, &net.weights())?)
}

/// How far each column's outputs are from streaming sepstream's over the same hops.
#[derive(Clone, Debug)]
pub struct Agreement {
    /// Hops compared.
    pub hops: usize,
    /// The smallest and largest value in the streaming outputs (the scale of the differences).
    pub reference_range: (f32, f32),
    /// (column, largest |output - streaming output|): `b` sepstream `forward` over the
    /// window, `c` candle, `d` tract over the window, `e` tract pulse (absent when tract could
    /// not pulsify the network).
    pub columns: Vec<(&'static str, f32)>,
    /// Why tract's pulse mode could not be built, when it could not.
    pub pulse_error: Option<String>,
}

impl Agreement {
    /// The largest difference of column `key`, if it ran.
    pub fn get(&self, key: &str) -> Option<f32> {
        self.columns.iter().find(|(k, _)| *k == key).map(|c| c.1)
    }
}

/// The streaming outputs of the first `hops` hops of `frames`: hop `k`'s is the output `step`
/// returns on frame `window - 1 + k * time_stride`. `None` when `frames` is too short.
pub fn streaming_outputs(net: &Network, frames: &[f32], hops: usize) -> Option<Vec<f32>> {
    let (len, stride) = (net.input_shape().len(), net.time_stride());
    let window = window_frames(net);
    let n = window - stride + hops * stride;
    let frames = frames.get(..n * len)?;
    let mut state = net.new_state();
    let mut out = Vec::with_capacity(hops * net.output_shape().len());
    for (i, f) in frames.chunks_exact(len).enumerate() {
        if let Some(y) = net.step(&mut state, f) {
            if i + 1 >= window {
                out.extend_from_slice(y);
            }
        }
    }
    Some(out)
}

/// Runs every column over the first `hops` hops of `frames` (untimed) and compares each
/// output with streaming sepstream's.
pub fn agreement(net: &Network, frames: &[f32], hops: usize) -> Result<Agreement, PeerError> {
    let (len, stride, out_len) = (
        net.input_shape().len(),
        net.time_stride(),
        net.output_shape().len(),
    );
    let window = window_frames(net);
    let want = streaming_outputs(net, frames, hops)
        .filter(|w| w.len() == hops * out_len)
        .ok_or_else(|| {
            PeerError::Input(format!(
                "{} frames do not hold {hops} hops of {stride} frames after a {window}-frame window",
                frames.len() / len
            ))
        })?;
    let reference_range = want
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let want = |k: usize| &want[k * out_len..][..out_len];
    let window_of = |k: usize| &frames[k * stride * len..(k * stride + window) * len];
    let mut columns = vec![("b", 0.0f32), ("c", 0.0), ("d", 0.0)];
    let candle = CandleNet::new(net)?;
    let mut tract = TractNet::new(net, window)?;
    for k in 0..hops {
        let y = net.forward(window_of(k), window);
        let outs = [
            y[y.len() - out_len..].to_vec(),
            candle.forward_window(window_of(k), window)?,
            tract.forward_window(window_of(k))?,
        ];
        for (c, y) in columns.iter_mut().zip(&outs) {
            c.1 = c.1.max(max_abs_diff(y, want(k)));
        }
    }
    let mut pulse_error = None;
    match TractPulse::new(net, stride) {
        Ok(mut pulse) => {
            let delay = pulse.delay();
            let mut worst = 0.0f32;
            let mut checked = 0;
            let mut produced = 0usize;
            let n = window - stride + hops * stride;
            // Pulses until every hop's output is out: `delay` output frames late.
            let pulses = n.div_ceil(stride) + delay;
            for p in 0..pulses {
                let x = match frames.get(p * stride * len..(p + 1) * stride * len) {
                    Some(x) => x.to_vec(),
                    None => vec![0.0; stride * len],
                };
                for frame in pulse.step(&x)?.chunks_exact(out_len) {
                    // Output frame j's newest input frame is j * stride.
                    let newest = produced.checked_sub(delay).map(|j| j * stride);
                    if let Some(d) = newest.and_then(|n| n.checked_sub(window - 1)) {
                        if d % stride == 0 && d / stride < hops {
                            worst = worst.max(max_abs_diff(frame, want(d / stride)));
                            checked += 1;
                        }
                    }
                    produced += 1;
                }
            }
            if checked == hops {
                columns.push(("e", worst));
            } else {
                pulse_error = Some(format!(
                    "tract pulse gave {checked} of {hops} hops' outputs"
                ));
            }
        }
        Err(e) => pulse_error = Some(e.to_string()),
    }
    Ok(Agreement {
        hops,
        reference_range,
        columns,
        pulse_error,
    })
}
