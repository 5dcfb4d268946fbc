//! Microphone capture: a cpal input stream whose callback converts to f32 mono and pushes into a
//! lock-free SPSC ring (ringbuf), never allocating, locking or blocking; what does not fit is counted.
//!
//! The callback's whole work is [`CaptureWriter::push_interleaved`], a plain function that tests can
//! call directly (with a counting allocator, or to simulate a microphone from a file).
//! Resampling to the model's rate happens downstream, off the callback thread.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Errors of microphone capture; each names the device (when there is one) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum MicError {
    /// No input device has the requested name.
    #[error("no input device named {name:?}; available input devices: {available:?}")]
    DeviceNotFound {
        /// The name asked for.
        name: String,
        /// Names of the input devices that exist.
        available: Vec<String>,
    },
    /// The host has no default input device.
    #[error("no default input device (is a sound server running? try `sepstream devices`)")]
    NoDefaultDevice,
    /// The device exists but uses a sample format this module does not convert.
    #[error("input device {device:?}: unsupported sample format {format}")]
    UnsupportedFormat {
        /// The device.
        device: String,
        /// The format it offered.
        format: String,
    },
    /// The requested ring capacity is zero or too large.
    #[error("capture ring capacity {0} samples is invalid (must be 1..=2^30)")]
    BadRingCapacity(usize),
    /// cpal failed while enumerating, opening or starting the device.
    #[error("input device {device:?}: {what}: {source}")]
    Backend {
        /// The device (or "<host>" while enumerating).
        device: String,
        /// What was being done.
        what: &'static str,
        /// The cpal error.
        #[source]
        source: cpal::Error,
    },
}

/// Counters shared between the capture callback and its readers. All updates are relaxed atomics.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Calls of the capture callback.
    pub callbacks: AtomicU64,
    /// Mono samples (frames) the callback received.
    pub frames_in: AtomicU64,
    /// Mono samples that did not fit in the ring and were dropped (capture overruns).
    pub overflowed: AtomicU64,
    /// Peak absolute level of the last callback, as `f32::to_bits`.
    pub last_peak_bits: AtomicU32,
    /// Set by the first callback.
    pub started: AtomicBool,
    /// Stream errors reported by the backend that are not fatal (e.g. xruns).
    pub xruns: AtomicU64,
}

impl CaptureCounters {
    /// Frames the callback received so far.
    pub fn frames_in(&self) -> u64 {
        self.frames_in.load(Ordering::Relaxed)
    }
    /// Samples dropped because the ring was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
    /// Peak absolute level of the last callback (0..=1 for full-scale input).
    pub fn last_peak(&self) -> f32 {
        f32::from_bits(self.last_peak_bits.load(Ordering::Relaxed))
    }
    /// Whether the first callback has arrived.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

/// A sample type the capture callback converts to f32 in [-1, 1].
pub trait InputSample: Copy + Send + 'static {
    /// The value as f32, full scale = 1.0.
    fn to_f32(self) -> f32;
}

impl InputSample for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
}
impl InputSample for f64 {
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
}
impl InputSample for i16 {
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32 / 32768.0
    }
}
impl InputSample for i32 {
    #[inline]
    fn to_f32(self) -> f32 {
        (self as f64 / 2_147_483_648.0) as f32
    }
}
impl InputSample for i8 {
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32 / 128.0
    }
}
impl InputSample for u8 {
    #[inline]
    fn to_f32(self) -> f32 {
        (self as f32 - 128.0) / 128.0
    }
}
impl InputSample for u16 {
    #[inline]
    fn to_f32(self) -> f32 {
        (self as f32 - 32768.0) / 32768.0
    }
}

/// Creates the capture ring: the callback side and the reader side, sharing `counters`.
pub fn capture_ring(capacity: usize) -> Result<(CaptureWriter, CaptureReader), MicError> {
    if capacity == 0 || capacity > (1 << 30) {
        return Err(MicError::BadRingCapacity(capacity));
    }
    let counters = Arc::new(CaptureCounters::default());
    let (prod, cons) = HeapRb::<f32>::new(capacity).split();
    Ok((
        CaptureWriter {
            prod,
            counters: counters.clone(),
        },
        CaptureReader { cons, counters },
    ))
}

/// The producer side, owned by the capture callback.
pub struct CaptureWriter {
    prod: HeapProd<f32>,
    counters: Arc<CaptureCounters>,
}

/// Mono frames converted per batch on the stack before one `push_slice`.
const CHUNK: usize = 256;

impl CaptureWriter {
    /// The callback's work: mixes interleaved `data` with `channels` channels down to mono f32 and
    /// pushes it into the ring; counts the samples that did not fit. Never allocates, locks or blocks.
    pub fn push_interleaved<T: InputSample>(&mut self, data: &[T], channels: usize) {
        let ch = channels.max(1);
        let inv = 1.0 / ch as f32;
        let mut chunk = [0.0f32; CHUNK];
        let mut frames = 0u64;
        let mut dropped = 0u64;
        let mut peak = 0.0f32;
        for block in data.chunks(CHUNK * ch) {
            let mut n = 0;
            for frame in block.chunks_exact(ch) {
                let mut sum = 0.0f32;
                for &s in frame {
                    sum += s.to_f32();
                }
                let v = sum * inv;
                peak = peak.max(v.abs());
                chunk[n] = v;
                n += 1;
            }
            let pushed = self.prod.push_slice(&chunk[..n]);
            frames += n as u64;
            dropped += (n - pushed) as u64;
        }
        let c = &self.counters;
        c.callbacks.fetch_add(1, Ordering::Relaxed);
        c.frames_in.fetch_add(frames, Ordering::Relaxed);
        if dropped > 0 {
            c.overflowed.fetch_add(dropped, Ordering::Relaxed);
        }
        c.last_peak_bits.store(peak.to_bits(), Ordering::Relaxed);
        if !c.started.load(Ordering::Relaxed) {
            c.started.store(true, Ordering::Release);
        }
    }

    /// The counters shared with the reader.
    pub fn counters(&self) -> &Arc<CaptureCounters> {
        &self.counters
    }
}

/// The consumer side: the capture stage pops mono f32 samples from here.
pub struct CaptureReader {
    cons: HeapCons<f32>,
    counters: Arc<CaptureCounters>,
}

impl CaptureReader {
    /// Pops up to `out.len()` samples into `out`; returns how many. Never blocks or allocates.
    pub fn pop(&mut self, out: &mut [f32]) -> usize {
        self.cons.pop_slice(out)
    }
    /// Samples waiting in the ring.
    pub fn available(&self) -> usize {
        self.cons.occupied_len()
    }
    /// Capacity of the ring in samples.
    pub fn capacity(&self) -> usize {
        self.cons.capacity().get()
    }
    /// The counters shared with the writer.
    pub fn counters(&self) -> &Arc<CaptureCounters> {
        &self.counters
    }
}

/// An input device as listed by [`list_input_devices`].
#[derive(Clone, Debug)]
pub struct InputDeviceInfo {
    /// Name to pass to `--device`.
    pub name: String,
    /// Whether it is the host's default input.
    pub is_default: bool,
    /// Supported configurations: (channels, min rate, max rate, sample format).
    pub configs: Vec<(u16, u32, u32, String)>,
    /// The default configuration: (channels, rate, sample format), if the device has one.
    pub default_config: Option<(u16, u32, String)>,
}

fn device_name(d: &cpal::Device) -> String {
    match d.description() {
        Ok(desc) => desc.name().to_string(),
        Err(_) => d.to_string(),
    }
}

fn device_id(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.to_string())
}

/// Whether the sound libraries' own messages reach stderr (off by default).
static BACKEND_MESSAGES: AtomicBool = AtomicBool::new(false);
/// One silenced section at a time (the saved stderr is per section).
static QUIET_SECTION: Mutex<()> = Mutex::new(());

/// Lets the sound libraries (ALSA, its JACK and OSS plugins) print their own diagnostics on
/// stderr while devices are probed and opened; off by default (`sepstream --verbose` turns it on).
///
/// ALSA's error handler would hide only ALSA's lines, and JACK's client library writes to
/// stderr itself; so instead, while cpal probes and opens devices, file descriptor 2 points at
/// `/dev/null`, and is restored before anything else runs. Errors are values here and are
/// reported after that, so a device that fails is still named with its reason.
pub fn show_backend_messages(show: bool) {
    BACKEND_MESSAGES.store(show, Ordering::Relaxed);
}

/// Runs `f` with stderr pointed at /dev/null, unless backend messages are shown.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    if BACKEND_MESSAGES.load(Ordering::Relaxed) {
        return f();
    }
    let _one = QUIET_SECTION.lock().unwrap_or_else(|e| e.into_inner());
    use std::io::Write;
    let _ = std::io::stderr().flush();
    // SAFETY: plain POSIX descriptor calls on descriptors this function owns (the duplicate of 2
    // and /dev/null), with their results checked; fd 2 is restored before returning.
    unsafe {
        let saved = libc::dup(2);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if saved < 0 || null < 0 {
            if saved >= 0 {
                libc::close(saved);
            }
            if null >= 0 {
                libc::close(null);
            }
            return f();
        }
        libc::dup2(null, 2);
        libc::close(null);
        let out = f();
        libc::dup2(saved, 2);
        libc::close(saved);
        out
    }
}

/// Lists the input devices of the default host with their supported rates.
pub fn list_input_devices() -> Result<Vec<InputDeviceInfo>, MicError> {
    quietly(list_input_devices_loud)
}

fn list_input_devices_loud() -> Result<Vec<InputDeviceInfo>, MicError> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| device_id(&d));
    let devices = host.input_devices().map_err(|source| MicError::Backend {
        device: "<host>".into(),
        what: "listing input devices",
        source,
    })?;
    let mut out = Vec::new();
    for d in devices {
        let configs = d
            .supported_input_configs()
            .map(|it| {
                it.map(|c| {
                    (
                        c.channels(),
                        c.min_sample_rate(),
                        c.max_sample_rate(),
                        format!("{:?}", c.sample_format()),
                    )
                })
                .collect()
            })
            .unwrap_or_default();
        let default_config = d.default_input_config().ok().map(|c| {
            (
                c.channels(),
                c.sample_rate(),
                format!("{:?}", c.sample_format()),
            )
        });
        let id = device_id(&d);
        out.push(InputDeviceInfo {
            name: device_name(&d),
            is_default: id.is_some() && id == default_id,
            configs,
            default_config,
        });
    }
    Ok(out)
}

/// Options of [`MicCapture::open`].
#[derive(Clone, Debug)]
pub struct MicOptions {
    /// Device name (as listed by [`list_input_devices`]; exact match first, then case-insensitive
    /// substring); `None` for the default input.
    pub device: Option<String>,
    /// Ring capacity in seconds of audio at the device rate.
    pub ring_seconds: f64,
    /// Requested frames per callback (`None`: the backend's default).
    pub buffer_frames: Option<u32>,
}

impl Default for MicOptions {
    fn default() -> Self {
        MicOptions {
            device: None,
            ring_seconds: 2.0,
            buffer_frames: None,
        }
    }
}

/// A fatal stream error reported by the backend after the stream started (e.g. disconnect).
#[derive(Clone, Debug)]
pub struct StreamFailure {
    /// The device.
    pub device: String,
    /// What the backend said.
    pub message: String,
}

/// A running microphone stream: the ring reader plus the stream that feeds it.
pub struct MicCapture {
    _stream: cpal::Stream,
    reader: CaptureReader,
    device: String,
    rate: u32,
    channels: u16,
    format: String,
    failure: Arc<Mutex<Option<StreamFailure>>>,
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for MicCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicCapture")
            .field("device", &self.device)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("format", &self.format)
            .finish()
    }
}

fn find_device(host: &cpal::Host, name: &str) -> Result<cpal::Device, MicError> {
    let devices: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|source| MicError::Backend {
            device: name.into(),
            what: "listing input devices",
            source,
        })?
        .collect();
    let names: Vec<String> = devices.iter().map(device_name).collect();
    let lower = name.to_lowercase();
    let pick = names
        .iter()
        .position(|n| n == name)
        .or_else(|| {
            devices
                .iter()
                .position(|d| device_id(d).as_deref() == Some(name))
        })
        .or_else(|| names.iter().position(|n| n.to_lowercase().contains(&lower)));
    match pick {
        Some(i) => Ok(devices.into_iter().nth(i).expect("index from position")),
        None => Err(MicError::DeviceNotFound {
            name: name.into(),
            available: names,
        }),
    }
}

impl MicCapture {
    /// Opens the device with its default input configuration and starts the stream.
    pub fn open(opts: &MicOptions) -> Result<MicCapture, MicError> {
        quietly(|| Self::open_loud(opts))
    }

    fn open_loud(opts: &MicOptions) -> Result<MicCapture, MicError> {
        let host = cpal::default_host();
        let device = match &opts.device {
            Some(name) => find_device(&host, name)?,
            None => host
                .default_input_device()
                .ok_or(MicError::NoDefaultDevice)?,
        };
        let dname = device_name(&device);
        let supported = device
            .default_input_config()
            .map_err(|source| MicError::Backend {
                device: dname.clone(),
                what: "reading the default input configuration",
                source,
            })?;
        let format = supported.sample_format();
        let mut config = supported.config();
        if let Some(n) = opts.buffer_frames {
            config.buffer_size = cpal::BufferSize::Fixed(n);
        }
        let rate = config.sample_rate;
        let channels = config.channels;
        let cap = ((rate as f64 * opts.ring_seconds).ceil() as usize).max(1024);
        let (writer, reader) = capture_ring(cap)?;
        let failure: Arc<Mutex<Option<StreamFailure>>> = Arc::new(Mutex::new(None));
        let failed = Arc::new(AtomicBool::new(false));
        let on_error = {
            let failure = failure.clone();
            let failed = failed.clone();
            let counters = writer.counters().clone();
            let dname = dname.clone();
            // Runs on the backend's thread, not in the data callback: it may lock and allocate.
            move |err: cpal::Error| match err.kind() {
                cpal::ErrorKind::Xrun | cpal::ErrorKind::RealtimeDenied => {
                    counters.xruns.fetch_add(1, Ordering::Relaxed);
                }
                cpal::ErrorKind::DeviceChanged => {}
                _ => {
                    if let Ok(mut f) = failure.lock() {
                        if f.is_none() {
                            *f = Some(StreamFailure {
                                device: dname.clone(),
                                message: err.to_string(),
                            });
                        }
                    }
                    failed.store(true, Ordering::Release);
                }
            }
        };
        let ch = channels as usize;
        let build_err = |source| MicError::Backend {
            device: dname.clone(),
            what: "building the input stream",
            source,
        };
        macro_rules! build {
            ($t:ty) => {{
                let mut w = writer;
                device
                    .build_input_stream::<$t, _, _>(
                        config,
                        move |data: &[$t], _: &cpal::InputCallbackInfo| {
                            w.push_interleaved(data, ch)
                        },
                        on_error,
                        None,
                    )
                    .map_err(build_err)?
            }};
        }
        let stream = match format {
            cpal::SampleFormat::F32 => build!(f32),
            cpal::SampleFormat::F64 => build!(f64),
            cpal::SampleFormat::I16 => build!(i16),
            cpal::SampleFormat::I32 => build!(i32),
            cpal::SampleFormat::I8 => build!(i8),
            cpal::SampleFormat::U8 => build!(u8),
            cpal::SampleFormat::U16 => build!(u16),
            other => {
                return Err(MicError::UnsupportedFormat {
                    device: dname,
                    format: format!("{other:?}"),
                })
            }
        };
        stream.play().map_err(|source| MicError::Backend {
            device: dname.clone(),
            what: "starting the input stream",
            source,
        })?;
        Ok(MicCapture {
            _stream: stream,
            reader,
            device: dname,
            rate,
            channels,
            format: format!("{format:?}"),
            failure,
            failed,
        })
    }

    /// The ring reader (pop the captured mono samples here).
    pub fn reader(&mut self) -> &mut CaptureReader {
        &mut self.reader
    }
    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }
    /// The rate the device delivers, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }
    /// Channels the device delivers (mixed down to mono).
    pub fn channels(&self) -> u16 {
        self.channels
    }
    /// The device's sample format.
    pub fn sample_format(&self) -> &str {
        &self.format
    }
    /// The fatal stream error, if the backend reported one (device lost, stream invalidated...).
    pub fn failure(&self) -> Option<StreamFailure> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}
