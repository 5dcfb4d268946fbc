//! The inference stage of keyword spotting: audio blocks at the device rate through a
//! [`sepstream_kws::Spotter`] (front end, which resamples; streaming network; keyword
//! decisions), one hop at a time, allocating nothing per hop. Events leave as `Copy`
//! [`KwsHit`]s; the actuation side gives them their names.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use sepstream_kws::KwsModel;
use sepstream_kws::{with_causes, Spotter};

use crate::capture::AudioBlock;
use crate::error::StageError;
use crate::event::{unix_now, Detection};
use crate::stage::{Outbox, Stage};

/// A keyword decision as it leaves the inference stage (no allocation): label index and times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KwsHit {
    /// Index into the model's labels.
    pub label: usize,
    /// Audio time of the word's start, seconds since capture began.
    pub start: f64,
    /// Audio time of the decision window's end.
    pub end: f64,
    /// Smoothed posterior.
    pub score: f32,
    /// Wall-clock time of the decision, Unix seconds.
    pub decided_at: f64,
    /// Time from the capture stage taking the block to the decision, ms.
    pub latency_ms: f64,
}

impl KwsHit {
    /// The named event (allocates the keyword string).
    pub fn to_detection(&self, labels: &[String]) -> Detection {
        Detection {
            keyword: labels
                .get(self.label)
                .cloned()
                .unwrap_or_else(|| format!("#{}", self.label)),
            label: self.label,
            start: self.start,
            end: self.end,
            score: self.score,
            decided_at: self.decided_at,
            latency_ms: self.latency_ms,
        }
    }
}

/// Live values for a terminal meter: input level and the top posteriors, updated per hop.
#[derive(Debug, Default)]
pub struct Meter {
    /// Peak level of the last block (f32 bits).
    pub level: AtomicU32,
    /// Label indices of the 3 highest posteriors.
    pub top_label: [AtomicU32; 3],
    /// Their posteriors (f32 bits).
    pub top_p: [AtomicU32; 3],
    /// Posterior frames so far.
    pub frames: AtomicU64,
    /// Discontinuities (dropped audio) that reset the stream.
    pub resets: AtomicU64,
    /// Keyword decisions the second-stage check (`[decision.confirm]`) turned down.
    pub rejected: AtomicU64,
}

impl Meter {
    /// (peak level, [(label index, posterior); 3]).
    pub fn read(&self) -> (f32, [(usize, f32); 3]) {
        let mut top = [(0usize, 0.0f32); 3];
        for (k, t) in top.iter_mut().enumerate() {
            *t = (
                self.top_label[k].load(Ordering::Relaxed) as usize,
                f32::from_bits(self.top_p[k].load(Ordering::Relaxed)),
            );
        }
        (f32::from_bits(self.level.load(Ordering::Relaxed)), top)
    }

    fn update(&self, posteriors: &[f32]) {
        let mut top = [(0usize, f32::NEG_INFINITY); 3];
        for (i, &p) in posteriors.iter().enumerate() {
            if p > top[2].1 {
                top[2] = (i, p);
                if top[2].1 > top[1].1 {
                    top.swap(1, 2);
                }
                if top[1].1 > top[0].1 {
                    top.swap(0, 1);
                }
            }
        }
        for (k, (i, p)) in top.iter().enumerate() {
            self.top_label[k].store(*i as u32, Ordering::Relaxed);
            self.top_p[k].store(p.max(0.0).to_bits(), Ordering::Relaxed);
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// The inference stage: [`AudioBlock`] in, [`KwsHit`] out.
pub struct KwsStage {
    model: KwsModel,
    spotter: Option<Spotter>,
    expected: Option<u64>,
    meter: Arc<Meter>,
}

impl KwsStage {
    /// A stage running `model`; the spotter is made for the device rate of the first block.
    pub fn new(model: KwsModel, meter: Arc<Meter>) -> Self {
        KwsStage {
            model,
            spotter: None,
            expected: None,
            meter,
        }
    }

    /// Prepares for blocks at `rate` (allocates; done on the first block or a rate change).
    pub fn prepare(&mut self, rate: u32) -> Result<(), StageError> {
        if self.spotter.as_ref().map(Spotter::input_rate) != Some(rate) {
            let spotter =
                Spotter::new(&self.model, rate).map_err(|e| StageError::new(with_causes(&e)))?;
            self.spotter = Some(spotter);
            self.expected = None;
        }
        Ok(())
    }

    /// Runs one block; calls `emit` per keyword decision. After [`KwsStage::prepare`] for the
    /// block's rate, allocates nothing (the steady-state hop). A gap in the timeline (audio
    /// dropped upstream) resets the spotter (front end, network state, detector) so stale
    /// context is gone; times stay in the capture timeline.
    pub fn process_block(
        &mut self,
        block: &AudioBlock,
        mut emit: impl FnMut(KwsHit),
    ) -> Result<(), StageError> {
        self.prepare(block.rate)?;
        let KwsStage {
            spotter,
            expected,
            meter,
            ..
        } = self;
        let Some(spotter) = spotter.as_mut() else {
            return Ok(());
        };
        if *expected != Some(block.start_sample) {
            if expected.is_some() {
                meter.resets.fetch_add(1, Ordering::Relaxed);
            }
            spotter.reset_at(block.start_sample as f64 / block.rate as f64);
        }
        *expected = Some(block.start_sample + block.len as u64);
        let samples = block.samples();
        let peak = samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        meter.level.store(peak.to_bits(), Ordering::Relaxed);
        let captured_at: Instant = block.captured_at;
        spotter.push_hops(samples, |hop| {
            if let Some(post) = hop.posteriors {
                meter.update(post);
            }
            if hop.rejected.is_some() {
                meter.rejected.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(h) = hop.hit {
                emit(KwsHit {
                    label: h.label_index,
                    start: h.start,
                    end: h.end,
                    score: h.score,
                    decided_at: unix_now(),
                    latency_ms: captured_at.elapsed().as_secs_f64() * 1e3,
                });
            }
        });
        Ok(())
    }

    /// The model's labels.
    pub fn labels(&self) -> &[String] {
        &self.model.labels
    }
}

impl Stage for KwsStage {
    type In = AudioBlock;
    type Out = KwsHit;

    fn process(&mut self, block: AudioBlock, out: &mut Outbox<KwsHit>) -> Result<(), StageError> {
        let mut send_err = None;
        self.process_block(&block, |hit| {
            if let Err(e) = out.send(hit) {
                send_err = Some(e);
            }
        })?;
        match send_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
