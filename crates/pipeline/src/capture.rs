//! The capture stage: pops mono f32 samples from the audio callback's SPSC ring (a cpal microphone,
//! or a simulated one that calls the very same callback function on a timer) and sends fixed-size
//! blocks stamped with their position in the audio timeline. Watches for device errors and stalls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sepstream_audio::mic::{capture_ring, CaptureCounters, CaptureReader, MicCapture, MicOptions};

use crate::config::CaptureConfig;
use crate::error::StageError;
use crate::stage::{Flow, Outbox, Source, StageContext};

/// Largest block, in samples at the device rate.
pub const BLOCK_MAX: usize = 1024;

/// A block of mono audio at the device rate.
#[derive(Clone)]
pub struct AudioBlock {
    /// Sample storage; the first `len` are valid.
    pub data: [f32; BLOCK_MAX],
    /// Valid samples.
    pub len: usize,
    /// Index of the first sample since capture began, at `rate`, counting samples lost to overruns.
    pub start_sample: u64,
    /// Device rate, Hz.
    pub rate: u32,
    /// When the capture stage took it from the ring.
    pub captured_at: Instant,
}

impl AudioBlock {
    /// The valid samples.
    pub fn samples(&self) -> &[f32] {
        &self.data[..self.len]
    }
    /// Audio time of the first sample, seconds since capture began.
    pub fn start_time(&self) -> f64 {
        self.start_sample as f64 / self.rate as f64
    }
    /// Duration of the block, seconds.
    pub fn duration(&self) -> f64 {
        self.len as f64 / self.rate as f64
    }
}

/// What one period of a simulated microphone did.
#[derive(Clone, Debug, PartialEq)]
pub enum SimStep {
    /// The buffer was filled; go on.
    Continue,
    /// No more audio (the buffer was not used).
    End,
    /// The simulated device failed (like a disconnect) with this message.
    Fail(String),
    /// Nothing this period (the buffer was not used): a device that stalls, or one whose stream
    /// never starts when every period is a stall.
    Stall,
}

/// A generator of interleaved samples for one callback period.
pub type SimGenerator = Box<dyn FnMut(&mut [f32]) -> SimStep + Send>;

/// A microphone simulated in software: a thread calls the capture callback function every period,
/// paced by the wall clock like a device.
pub struct SimulatedInput {
    /// Rate it pretends to have, Hz.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Frames per callback.
    pub period_frames: usize,
    /// Fills one period of interleaved samples.
    pub generator: SimGenerator,
    /// Name it reports.
    pub name: String,
}

impl SimulatedInput {
    /// Plays `samples` (mono, at `rate`) once, preceded by `lead_s` and followed by `tail_s`
    /// seconds of silence, then ends.
    pub fn from_samples(samples: Vec<f32>, rate: u32, lead_s: f64, tail_s: f64) -> Self {
        let lead = (lead_s * rate as f64) as usize;
        let tail = (tail_s * rate as f64) as usize;
        let total = lead + samples.len() + tail;
        let mut pos = 0usize;
        SimulatedInput {
            rate,
            channels: 1,
            period_frames: (rate as usize / 100).max(1),
            name: "simulated".into(),
            generator: Box::new(move |buf: &mut [f32]| {
                if pos >= total {
                    return SimStep::End;
                }
                for v in buf.iter_mut() {
                    *v = if pos >= lead && pos - lead < samples.len() {
                        samples[pos - lead]
                    } else {
                        0.0
                    };
                    pos += 1;
                }
                SimStep::Continue
            }),
        }
    }

    /// Endless silence at `rate`.
    pub fn silence(rate: u32) -> Self {
        SimulatedInput {
            rate,
            channels: 1,
            period_frames: (rate as usize / 100).max(1),
            name: "simulated-silence".into(),
            generator: Box::new(|buf: &mut [f32]| {
                buf.fill(0.0);
                SimStep::Continue
            }),
        }
    }
}

/// Opens a simulated device: called once at start and again each time the device stalls, as a
/// microphone is opened again (an error is a device that cannot be opened).
pub type SimOpener = Box<dyn FnMut() -> Result<SimulatedInput, String> + Send>;

/// Where the capture stage gets audio.
pub enum AudioInput {
    /// A cpal input device.
    Mic(MicOptions),
    /// A simulated device (tests, `--simulate`), played once; a stall ends the run.
    Simulated(SimulatedInput),
    /// A simulated device opened again after a stall, like a microphone.
    SimulatedDevice(SimOpener),
}

/// How the capture stage opens its device again after a stall.
enum Reopen {
    Mic(MicOptions),
    Sim(SimOpener),
}

/// What the capture stage publishes once it has started: device, rate, the callback counters of
/// the stream now open, and how often the device was reopened after a stall.
#[derive(Debug, Default)]
pub struct CaptureStatus {
    device: OnceLock<(String, u32, u16)>,
    /// Replaced when the device is reopened (not touched by the audio callback).
    counters: Mutex<Option<Arc<CaptureCounters>>>,
    /// Samples lost to ring overruns by streams that were since replaced.
    earlier_overruns: AtomicU64,
    reopens: AtomicU64,
}

impl CaptureStatus {
    /// (device name, rate Hz, channels), once the stream is open.
    pub fn device(&self) -> Option<&(String, u32, u16)> {
        self.device.get()
    }
    /// The counters of the callback of the stream now open, once one is.
    pub fn counters(&self) -> Option<Arc<CaptureCounters>> {
        self.counters.lock().ok().and_then(|c| c.clone())
    }
    /// Whether the first audio callback of the stream now open has arrived.
    pub fn started(&self) -> bool {
        self.counters().is_some_and(|c| c.started())
    }
    /// Samples lost to ring overruns over the whole run, every stream counted.
    pub fn overruns(&self) -> u64 {
        self.earlier_overruns.load(Ordering::Relaxed)
            + self.counters().map_or(0, |c| c.overflowed())
    }
    /// How often the device stalled and was opened again.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    fn set_counters(&self, counters: Arc<CaptureCounters>) {
        if let Ok(mut c) = self.counters.lock() {
            if let Some(old) = c.replace(counters) {
                self.earlier_overruns
                    .fetch_add(old.overflowed(), Ordering::Relaxed);
            }
        }
    }
}

struct SimRunner {
    stop: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

enum Active {
    Mic(MicCapture),
    Sim(CaptureReader, SimRunner),
}

/// The capture stage (a [`Source`] of [`AudioBlock`]s).
pub struct CaptureSource {
    input: Option<AudioInput>,
    /// How to open the device again after a stall (none: a stall ends the run).
    reopen_with: Option<Reopen>,
    cfg: CaptureConfig,
    /// The counters of the stream now open.
    counters: Option<Arc<CaptureCounters>>,
    status: Arc<CaptureStatus>,
    active: Option<Active>,
    metrics: Option<StageContext>,
    name: String,
    rate: u32,
    block_len: usize,
    popped: u64,
    overflow_seen: u64,
    started_at: Instant,
    last_frames: u64,
    last_progress: Instant,
    /// The device failed or stalled: its stream is not joined on stop (see `stop`).
    device_lost: bool,
}

impl CaptureSource {
    /// A capture stage reading `input` with ring and block sizes from `cfg`.
    pub fn new(input: AudioInput, cfg: CaptureConfig) -> Self {
        CaptureSource {
            input: Some(input),
            reopen_with: None,
            cfg,
            counters: None,
            status: Arc::new(CaptureStatus::default()),
            active: None,
            metrics: None,
            name: String::new(),
            rate: 0,
            block_len: 0,
            popped: 0,
            overflow_seen: 0,
            started_at: Instant::now(),
            last_frames: 0,
            last_progress: Instant::now(),
            device_lost: false,
        }
    }

    /// Shared status (device, rate, counters) for the caller to watch.
    pub fn status(&self) -> Arc<CaptureStatus> {
        self.status.clone()
    }

    fn reader(&mut self) -> Option<&mut CaptureReader> {
        match self.active.as_mut()? {
            Active::Mic(m) => Some(m.reader()),
            Active::Sim(r, _) => Some(r),
        }
    }

    fn counters(&self) -> Option<&Arc<CaptureCounters>> {
        self.counters.as_ref()
    }

    fn check_health(&mut self) -> Result<(), StageError> {
        match &self.active {
            Some(Active::Mic(m)) => {
                if let Some(f) = m.failure() {
                    return Err(StageError::new(format!(
                        "input device {:?}: stream error: {}",
                        f.device, f.message
                    )));
                }
            }
            Some(Active::Sim(_, r)) => {
                if let Ok(f) = r.failure.lock() {
                    if let Some(msg) = f.as_ref() {
                        return Err(StageError::new(format!(
                            "input device {:?}: stream error: {msg}",
                            self.name
                        )));
                    }
                }
            }
            None => return Err(StageError::new("capture polled before start")),
        }
        let Some(c) = self.counters() else {
            return Ok(());
        };
        let frames = c.frames_in();
        let now = Instant::now();
        if frames != self.last_frames {
            self.last_frames = frames;
            self.last_progress = now;
            return Ok(());
        }
        if self.sim_ended() {
            return Ok(());
        }
        if !c.started() {
            let waited_s = now.duration_since(self.started_at).as_secs_f64();
            // A stream opened again after a stall that does not start is one more stall (the
            // device answered the open); only the first start of a run is fatal.
            if self.status.reopens() > 0 && waited_s > self.cfg.start_timeout_s {
                return self.reopen(waited_s);
            }
            if waited_s > self.cfg.start_timeout_s {
                return Err(StageError::new(format!(
                    "input device {:?}: no audio within {} s of starting the stream",
                    self.name, self.cfg.start_timeout_s
                )));
            }
        } else {
            let bound = stall_bound_s(
                self.cfg.stall_timeout_s,
                c.callbacks.load(Ordering::Relaxed),
                frames,
                self.rate,
            );
            let silent_s = now.duration_since(self.last_progress).as_secs_f64();
            if silent_s > bound {
                return self.reopen(silent_s);
            }
        }
        Ok(())
    }

    /// After `silent_s` seconds without audio: opens the microphone again (a sound server that
    /// was starved comes back this way), or fails with the reason when it cannot be opened (the
    /// server or the device is gone). The stalled stream is leaked, not joined (see `stop`); the
    /// audio missed is a gap in the timeline, so inference starts afresh after it.
    fn reopen(&mut self, silent_s: f64) -> Result<(), StageError> {
        let stalled = format!(
            "input device {:?}: no audio for {silent_s:.2} s (device disconnected or stalled)",
            self.name
        );
        let Some(how) = self.reopen_with.as_mut() else {
            return Err(StageError::new(stalled));
        };
        if let Some(old) = self.active.take() {
            match old {
                Active::Sim(_, mut r) => {
                    r.stop.store(true, Ordering::Relaxed);
                    // the generator thread ends within one period; it is not waited for
                    r.thread.take();
                }
                // Dropping joins the stream's thread, which may never return (see `stop`): a
                // thread of its own does it, and is not waited for.
                old @ Active::Mic(_) => {
                    let _ = std::thread::Builder::new()
                        .name("stalled-stream".into())
                        .spawn(move || drop(old));
                }
            }
        }
        let ring_seconds = self.cfg.ring_seconds;
        let opened = match how {
            Reopen::Mic(opts) => MicCapture::open(opts)
                .map(|mut m| {
                    let (rate, counters) = (m.sample_rate(), m.reader().counters().clone());
                    (Active::Mic(m), rate, counters)
                })
                .map_err(|e| e.to_string()),
            Reopen::Sim(open) => open().and_then(|sim| {
                simulated(sim, ring_seconds)
                    .map(|(active, _, rate, _, counters)| (active, rate, counters))
                    .map_err(|e| e.message)
            }),
        };
        let (active, rate, counters) = opened
            .map_err(|e| StageError::new(format!("{stalled}; opening it again failed: {e}")))?;
        if rate != self.rate {
            match active {
                // a microphone stream is never joined here (see `stop`)
                Active::Mic(m) => std::mem::forget(m),
                Active::Sim(_, r) => r.stop.store(true, Ordering::Relaxed),
            }
            return Err(StageError::new(format!(
                "{stalled}; opened again, it runs at {rate} Hz instead of {} Hz",
                self.rate
            )));
        }
        self.status.set_counters(counters.clone());
        self.status.reopens.fetch_add(1, Ordering::Relaxed);
        self.counters = Some(counters);
        self.active = Some(active);
        self.overflow_seen = 0;
        self.last_frames = 0;
        self.popped += (silent_s * self.rate as f64).round() as u64;
        self.started_at = Instant::now();
        self.last_progress = self.started_at;
        Ok(())
    }

    fn sim_ended(&self) -> bool {
        matches!(&self.active, Some(Active::Sim(_, r)) if r.ended.load(Ordering::Acquire))
    }
}

/// How long without audio counts as a stall: the configured timeout, but never less than four
/// mean callback periods, so that a device delivering large periods is not taken for lost.
fn stall_bound_s(stall_timeout_s: f64, callbacks: u64, frames: u64, rate: u32) -> f64 {
    if callbacks == 0 || rate == 0 {
        return stall_timeout_s;
    }
    let mean_period_s = frames as f64 / callbacks as f64 / rate as f64;
    stall_timeout_s.max(4.0 * mean_period_s)
}

fn ring_capacity(rate: u32, seconds: f64) -> usize {
    ((rate as f64 * seconds).ceil() as usize).max(BLOCK_MAX * 2)
}

/// Starts a simulated device: (the stream, its name, rate, channels, callback counters).
fn simulated(
    sim: SimulatedInput,
    ring_seconds: f64,
) -> Result<(Active, String, u32, u16, Arc<CaptureCounters>), StageError> {
    let (name, rate, ch) = (sim.name.clone(), sim.rate, sim.channels);
    if rate == 0 {
        return Err(StageError::new("simulated input with rate 0"));
    }
    let (reader, runner) = start_sim(sim, ring_seconds)?;
    let counters = reader.counters().clone();
    Ok((Active::Sim(reader, runner), name, rate, ch, counters))
}

fn start_sim(
    sim: SimulatedInput,
    ring_seconds: f64,
) -> Result<(CaptureReader, SimRunner), StageError> {
    let (mut writer, reader) = capture_ring(ring_capacity(sim.rate, ring_seconds))
        .map_err(|e| StageError::new(e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let ended = Arc::new(AtomicBool::new(false));
    let failure = Arc::new(Mutex::new(None));
    let (st, en, fa) = (stop.clone(), ended.clone(), failure.clone());
    let SimulatedInput {
        rate,
        channels,
        period_frames,
        mut generator,
        ..
    } = sim;
    let thread = std::thread::Builder::new()
        .name("sim-mic".into())
        .spawn(move || {
            let ch = channels.max(1) as usize;
            let mut buf = vec![0.0f32; period_frames * ch];
            let period = Duration::from_secs_f64(period_frames as f64 / rate as f64);
            let t0 = Instant::now();
            let mut k: u32 = 0;
            while !st.load(Ordering::Relaxed) {
                match generator(&mut buf) {
                    SimStep::Continue => writer.push_interleaved(&buf, ch),
                    SimStep::Stall => {}
                    SimStep::End => break,
                    SimStep::Fail(msg) => {
                        if let Ok(mut f) = fa.lock() {
                            *f = Some(msg);
                        }
                        break;
                    }
                }
                k += 1;
                let next = t0 + period * k;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
            }
            en.store(true, Ordering::Release);
        })
        .map_err(|e| StageError::new(format!("cannot start the simulated microphone: {e}")))?;
    Ok((
        reader,
        SimRunner {
            stop,
            ended,
            failure,
            thread: Some(thread),
        },
    ))
}

impl Source for CaptureSource {
    type Out = AudioBlock;

    fn start(&mut self, ctx: &StageContext) -> Result<(), StageError> {
        let input = self
            .input
            .take()
            .ok_or_else(|| StageError::new("capture started twice"))?;
        let (active, name, rate, channels, counters) = match input {
            AudioInput::Mic(mut opts) => {
                opts.ring_seconds = self.cfg.ring_seconds;
                if self.cfg.buffer_frames > 0 {
                    opts.buffer_frames = Some(self.cfg.buffer_frames);
                }
                let mut m = MicCapture::open(&opts).map_err(|e| StageError::new(e.to_string()))?;
                self.reopen_with = Some(Reopen::Mic(opts));
                let (name, rate, ch) = (m.device().to_string(), m.sample_rate(), m.channels());
                let counters = m.reader().counters().clone();
                (Active::Mic(m), name, rate, ch, counters)
            }
            AudioInput::SimulatedDevice(mut open) => {
                let sim = open().map_err(StageError::new)?;
                self.reopen_with = Some(Reopen::Sim(open));
                simulated(sim, self.cfg.ring_seconds)?
            }
            AudioInput::Simulated(sim) => simulated(sim, self.cfg.ring_seconds)?,
        };
        self.block_len =
            ((rate as f64 * self.cfg.block_ms / 1e3).round() as usize).clamp(1, BLOCK_MAX);
        self.name = name.clone();
        self.rate = rate;
        let _ = self.status.device.set((name, rate, channels));
        self.status.set_counters(counters.clone());
        self.counters = Some(counters);
        self.active = Some(active);
        self.metrics = Some(ctx.clone());
        self.started_at = Instant::now();
        self.last_progress = Instant::now();
        Ok(())
    }

    fn poll(&mut self, out: &mut Outbox<AudioBlock>) -> Result<Flow, StageError> {
        if let Err(e) = self.check_health() {
            self.device_lost = true;
            return Err(e);
        }
        let ended = self.sim_ended();
        let block_len = self.block_len;
        let rate = self.rate;
        let avail = self.reader().map(|r| r.available()).unwrap_or(0);
        if avail < block_len && !(ended && avail > 0) {
            if ended {
                return Ok(Flow::Finished);
            }
            // Wait a fraction of a block for the callback to deliver more.
            let wait = Duration::from_secs_f64(block_len as f64 / rate as f64 / 4.0)
                .min(Duration::from_millis(5));
            std::thread::sleep(wait);
            return Ok(Flow::Continue);
        }
        // Samples the callback could not store are accounted for in the timeline (approximately:
        // they are placed before the block popped next).
        if let Some(c) = self.counters().cloned() {
            let ov = c.overflowed();
            if ov > self.overflow_seen {
                self.popped += ov - self.overflow_seen;
                self.overflow_seen = ov;
                if let Some(ctx) = &self.metrics {
                    ctx.metrics
                        .overruns
                        .store(self.status.overruns(), Ordering::Relaxed);
                }
            }
        }
        let mut block = AudioBlock {
            data: [0.0; BLOCK_MAX],
            len: 0,
            start_sample: self.popped,
            rate,
            captured_at: Instant::now(),
        };
        let n = match self.reader() {
            Some(r) => r.pop(&mut block.data[..block_len]),
            None => 0,
        };
        block.len = n;
        self.popped += n as u64;
        if n > 0 {
            out.send(block)?;
        }
        Ok(Flow::Continue)
    }

    fn stop(&mut self) -> Result<(), StageError> {
        match self.active.take() {
            Some(Active::Sim(_, mut r)) => {
                r.stop.store(true, Ordering::Relaxed);
                if let Some(t) = r.thread.take() {
                    let _ = t.join();
                }
            }
            // Dropping a cpal ALSA stream joins its worker thread. When the sound server dies,
            // libpulse's ALSA plugin can leave that thread blocked forever on a lock, so a lost
            // device's stream is leaked instead: the run ends now, and the process exits soon.
            Some(Active::Mic(m)) if self.device_lost => std::mem::forget(m),
            Some(Active::Mic(m)) => drop(m),
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::stall_bound_s;

    #[test]
    fn the_stall_bound_is_the_timeout_unless_the_device_periods_are_long() {
        // Before any callback: the configured timeout.
        assert_eq!(stall_bound_s(0.5, 0, 0, 48_000), 0.5);
        // 10 ms periods at 48 kHz: four of them are far below the timeout.
        assert_eq!(stall_bound_s(0.5, 100, 48_000, 48_000), 0.5);
        // 8192-frame periods at 8 kHz (about 1 s each): four periods are allowed.
        let bound = stall_bound_s(0.5, 10, 81_920, 8_000);
        assert!((bound - 4.096).abs() < 1e-9, "{bound}");
    }
}
