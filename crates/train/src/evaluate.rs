//! Evaluation with the streaming engine (a [`sepstream_kws::Spotter`]: sepstream-nn `step` over
//! sepstream-audio `FeatureStream` frames, then the keyword detector), per clip (accuracy, per-class precision/recall, confusion) and over one long stream of
//! concatenated clips with background gaps (detection rate, false accepts per hour, delay).
//! Models made for fixed windows (imported graphs) can also be judged as they were built:
//! each clip one fresh window through [`Network::forward_window`] ([`ClipMode::Window`]).

use std::path::Path;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sepstream_audio::{
    resample_clip, DecisionConfig, FeatureExtractor, FrontendConfig, KeywordHit,
};

use sepstream_kws::{with_causes, Confirm, Hop, ModelSettings, Spotter};
use sepstream_nn::Network;
use serde::Serialize;

use crate::dataset::{Clip, SILENCE, UNKNOWN};
use crate::TrainError;

pub use sepstream_kws::{Event, Trace};

/// The front end and decision settings of a network's spec ([`ModelSettings::from_spec`]).
pub fn configs(net: &Network) -> Result<(FrontendConfig, DecisionConfig), TrainError> {
    let ModelSettings { frontend, decision } = ModelSettings::from_spec(net.spec())?;
    Ok((frontend, decision))
}

/// Runs the streaming engine over `samples` (at `rate`) from a reset state, then over `tail`
/// seconds of silence; the posterior of the last output frame, or `None` if that gives none.
pub fn classify_samples(
    net: &Network,
    fe: &FrontendConfig,
    samples: &[f32],
    rate: u32,
    tail: f64,
) -> Result<Option<Vec<f32>>, TrainError> {
    // No keyword decisions are read here: the detector runs with the default settings.
    let mut spotter = Spotter::with_network(net, fe, &DecisionConfig::default(), rate)?;
    let mut last: Option<Vec<f32>> = None;
    let mut on = |hop: &Hop<'_>| {
        if let Some(o) = hop.posteriors {
            match &mut last {
                Some(v) => v.copy_from_slice(o),
                None => last = Some(o.to_vec()),
            }
        }
    };
    spotter.push_hops(samples, &mut on);
    spotter.push_hops(&vec![0.0; tail_samples(tail, rate)], &mut on);
    spotter.finish_hops(&mut on);
    Ok(last)
}

/// One decision from one fresh window: the clip (at `rate`, resampled to the model rate) zero
/// padded or cut to `window` seconds, its feature frames through [`Network::forward_window`]
/// (zero padding on both sides in time, as a graph trained on fixed windows computes it); the
/// posterior of the last output frame, or `None` if the window gives none.
pub fn classify_window(
    net: &Network,
    fe: &FrontendConfig,
    samples: &[f32],
    rate: u32,
    window: f64,
) -> Result<Option<Vec<f32>>, TrainError> {
    let mut x = resample_clip(samples, rate, fe.sample_rate)?;
    x.resize(tail_samples(window, fe.sample_rate), 0.0);
    let mut fx = FeatureExtractor::try_new(fe).map_err(|e| TrainError::Spec(e.to_string()))?;
    let feats = fx.clip(&x);
    let frames = feats.len() / fe.feature_len();
    if frames == 0 {
        return Ok(None);
    }
    let out = net.forward_window(&feats, frames);
    let n = net.output_shape().len();
    Ok((out.len() >= n).then(|| out[out.len() - n..].to_vec()))
}

/// How a clip is classified.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipMode {
    /// The streaming engine from a reset state over the clip and `tail` s of silence.
    Stream { tail: f64 },
    /// One fresh window of `seconds` ([`classify_window`]).
    Window { seconds: f64 },
}

/// Samples of silence in a clip tail of `tail` seconds at `rate`.
pub fn tail_samples(tail: f64, rate: u32) -> usize {
    (tail * f64::from(rate)).round() as usize
}

/// Per-clip results.
#[derive(Clone, Debug, Serialize)]
pub struct ClipEval {
    pub labels: Vec<String>,
    /// Seconds of silence after each clip before its posterior was read (streaming).
    pub clip_tail: f64,
    /// How each clip was classified.
    pub mode: ClipMode,
    pub clips: usize,
    pub accuracy: f64,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<usize>>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    /// Clips that could not be read (path, reason).
    pub errors: Vec<(String, String)>,
}

/// Streams every clip through the engine, followed by the spec's `[decision] clip_tail` of
/// silence, and compares the last posterior's argmax with the label.
pub fn eval_clips(net: &Network, clips: &[Clip]) -> Result<ClipEval, TrainError> {
    let (_, de) = configs(net)?;
    eval_clips_with_tail(net, clips, de.clip_tail)
}

/// [`eval_clips`] with another clip tail (seconds of silence after each clip).
pub fn eval_clips_with_tail(
    net: &Network,
    clips: &[Clip],
    tail: f64,
) -> Result<ClipEval, TrainError> {
    eval_clips_in(net, clips, ClipMode::Stream { tail })
}

/// Classifies every clip the given way and compares the posterior's argmax with the label.
pub fn eval_clips_in(
    net: &Network,
    clips: &[Clip],
    mode: ClipMode,
) -> Result<ClipEval, TrainError> {
    let (fe, _) = configs(net)?;
    let labels = net.spec().labels.clone();
    let n = labels.len();
    let results: Vec<Result<Option<usize>, (String, String)>> = clips
        .par_iter()
        .map(|c| {
            let err = |e: String| (c.path.display().to_string(), e);
            let (s, r) = sepstream_audio::read_audio(&c.path).map_err(|e| err(e.to_string()))?;
            let p = match mode {
                ClipMode::Stream { tail } => classify_samples(net, &fe, &s, r, tail),
                ClipMode::Window { seconds } => classify_window(net, &fe, &s, r, seconds),
            }
            .map_err(|e| err(e.to_string()))?;
            Ok(p.map(|v| argmax(&v)))
        })
        .collect();
    let mut confusion = vec![vec![0usize; n]; n];
    let mut errors = Vec::new();
    let mut counted = 0;
    for (c, r) in clips.iter().zip(results) {
        match r {
            Ok(Some(p)) if c.label < n && p < n => {
                confusion[c.label][p] += 1;
                counted += 1;
            }
            Ok(_) => errors.push((
                c.path.display().to_string(),
                "too short for one output".into(),
            )),
            Err(e) => errors.push(e),
        }
    }
    let correct: usize = (0..n).map(|i| confusion[i][i]).sum();
    let precision = (0..n)
        .map(|j| {
            let col: usize = (0..n).map(|i| confusion[i][j]).sum();
            if col == 0 {
                0.0
            } else {
                confusion[j][j] as f64 / col as f64
            }
        })
        .collect();
    let recall = (0..n)
        .map(|i| {
            let row: usize = confusion[i].iter().sum();
            if row == 0 {
                0.0
            } else {
                confusion[i][i] as f64 / row as f64
            }
        })
        .collect();
    Ok(ClipEval {
        labels,
        clip_tail: match mode {
            ClipMode::Stream { tail } => tail,
            ClipMode::Window { .. } => 0.0,
        },
        mode,
        clips: counted,
        accuracy: correct as f64 / counted.max(1) as f64,
        confusion,
        precision,
        recall,
        errors,
    })
}

/// The index of the largest value (the first of equal ones).
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut b = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[b] {
            b = i;
        }
    }
    b
}

/// Where a word was put in the long stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlacedWord {
    pub label: usize,
    pub start: f64,
    /// End of speech (last loud 10 ms block).
    pub end: f64,
}

/// Results over one long stream.
#[derive(Clone, Debug, Serialize)]
pub struct StreamEval {
    pub hours: f64,
    pub keywords: usize,
    pub detected: usize,
    pub detection_rate: f64,
    pub false_accepts: usize,
    pub false_accepts_per_hour: f64,
    /// Median of (event time - end of the word) over detected keywords, seconds.
    pub median_delay: f64,
    /// Events the second-stage check (`[decision.confirm]`) turned down (0 without one).
    pub rejected: usize,
}

/// Speech start/end in a clip: first/last 10 ms block within 20 dB of the loudest.
pub fn speech_extent(x: &[f32], rate: u32) -> (f64, f64) {
    let b = (rate as usize / 100).max(1);
    let e: Vec<f32> = x
        .chunks(b)
        .map(|c| c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32)
        .collect();
    let m = e.iter().cloned().fold(0.0f32, f32::max);
    if m <= 0.0 {
        return (0.0, x.len() as f64 / rate as f64);
    }
    let th = m * 0.01;
    let first = e.iter().position(|v| *v >= th).unwrap_or(0);
    let last = e.iter().rposition(|v| *v >= th).unwrap_or(e.len() - 1);
    (
        (first * b) as f64 / rate as f64,
        (((last + 1) * b).min(x.len())) as f64 / rate as f64,
    )
}

/// Builds one stream: keyword and unknown clips (shuffled, seeded) separated by 1-2 s of
/// background from the `_silence_` clips; returns samples (16 kHz) and where the words are.
pub fn build_stream(
    clips: &[Clip],
    rate: u32,
    seed: u64,
) -> Result<(Vec<f32>, Vec<PlacedWord>), TrainError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let load = |c: &Clip| -> Result<Vec<f32>, TrainError> {
        let (s, r) = sepstream_audio::read_audio(&c.path)
            .map_err(|e| TrainError::Data(format!("{}: {e}", c.path.display())))?;
        Ok(sepstream_audio::resample_clip(&s, r, rate)?)
    };
    let noise: Vec<Vec<f32>> = clips
        .iter()
        .filter(|c| c.label == SILENCE)
        .map(load)
        .collect::<Result<_, _>>()?;
    let mut words: Vec<&Clip> = clips.iter().filter(|c| c.label != SILENCE).collect();
    for i in (1..words.len()).rev() {
        let j = rng.random_range(0..=i);
        words.swap(i, j);
    }
    let mut out = Vec::new();
    let mut placed = Vec::new();
    let gap = |out: &mut Vec<f32>, rng: &mut ChaCha8Rng| {
        let len = rng.random_range(rate as usize..2 * rate as usize);
        let g = 10f32.powf(rng.random_range(-20.0f32..0.0) / 20.0);
        if noise.is_empty() {
            out.extend(std::iter::repeat_n(0.0, len));
        } else {
            let n = &noise[rng.random_range(0..noise.len())];
            out.extend((0..len).map(|k| g * n[k % n.len()]));
        }
    };
    gap(&mut out, &mut rng);
    for c in words {
        let s = load(c)?;
        let (a, b) = speech_extent(&s, rate);
        let t0 = out.len() as f64 / rate as f64;
        out.extend_from_slice(&s);
        placed.push(PlacedWord {
            label: c.label,
            start: t0 + a,
            end: t0 + b,
        });
        gap(&mut out, &mut rng);
    }
    Ok((out, placed))
}

/// Runs the streaming engine and keyword detector (with `decision`, normally the spec's, and the
/// second-stage check `confirm`, if any) over the stream and scores the events:
/// an event matches a keyword word of the same label if it fires between the word's start and
/// 1 s after its end (each word matched once); every other event is a false accept.
pub fn eval_stream(
    net: &Network,
    decision: &DecisionConfig,
    confirm: Option<&Arc<Confirm>>,
    samples: &[f32],
    rate: u32,
    words: &[PlacedWord],
) -> Result<StreamEval, TrainError> {
    let (fe, _) = configs(net)?;
    let mut rejected = 0;
    let events = run_detector(net, &fe, decision, confirm, samples, rate, |hop| {
        rejected += usize::from(hop.rejected.is_some())
    })?;
    let mut used = vec![false; words.len()];
    let mut delays = Vec::new();
    let mut fa = 0;
    for ev in &events {
        let m = words.iter().enumerate().position(|(i, w)| {
            !used[i] && w.label == ev.label_index && ev.end >= w.start && ev.end <= w.end + 1.0
        });
        match m {
            Some(i) => {
                used[i] = true;
                delays.push(ev.end - words[i].end);
            }
            None => fa += 1,
        }
    }
    let keywords = words
        .iter()
        .filter(|w| w.label != UNKNOWN && w.label != SILENCE)
        .count();
    delays.sort_by(|a, b| a.total_cmp(b));
    let hours = samples.len() as f64 / rate as f64 / 3600.0;
    Ok(StreamEval {
        hours,
        keywords,
        detected: delays.len(),
        detection_rate: delays.len() as f64 / keywords.max(1) as f64,
        false_accepts: fa,
        false_accepts_per_hour: fa as f64 / hours.max(1e-9),
        median_delay: if delays.is_empty() {
            f64::NAN
        } else {
            delays[delays.len() / 2]
        },
        rejected,
    })
}

/// Keyword events of a whole signal through the [`Spotter`] (FeatureStream -> Network::step ->
/// KeywordDetector).
pub fn detect(
    net: &Network,
    fe: &FrontendConfig,
    de: &DecisionConfig,
    samples: &[f32],
    rate: u32,
) -> Result<Vec<Event>, TrainError> {
    run_detector(net, fe, de, None, samples, rate, |_| {})
}

/// [`detect`], keeping every feature frame and posterior as well.
pub fn trace(
    net: &Network,
    fe: &FrontendConfig,
    de: &DecisionConfig,
    samples: &[f32],
    rate: u32,
) -> Result<Trace, TrainError> {
    let mut trace = Trace::default();
    let labels = &net.spec().labels;
    run_detector(net, fe, de, None, samples, rate, |hop| {
        trace.record(hop, labels)
    })?;
    Ok(trace)
}

/// Streams `samples` through a [`Spotter`] (with the check `confirm`, if any) in blocks of 4096;
/// `seen` is called for every hop.
fn run_detector(
    net: &Network,
    fe: &FrontendConfig,
    de: &DecisionConfig,
    confirm: Option<&Arc<Confirm>>,
    samples: &[f32],
    rate: u32,
    mut seen: impl FnMut(&Hop<'_>),
) -> Result<Vec<Event>, TrainError> {
    let mut spotter = Spotter::with_network(net, fe, de, rate)?;
    if let Some(c) = confirm {
        spotter = spotter.with_confirm(Arc::clone(c))?;
    }
    let labels = &net.spec().labels;
    let mut events = Vec::new();
    let mut on = |hop: &Hop<'_>| {
        seen(hop);
        if let Some(h) = &hop.hit {
            events.push(Event::from_hit(h, labels));
        }
    };
    for block in samples.chunks(4096) {
        spotter.push_hops(block, &mut on);
    }
    spotter.finish_hops(&mut on);
    Ok(events)
}

/// Clips of a folder, for evaluation.
pub fn clips_of(dir: &Path) -> Result<Vec<Clip>, TrainError> {
    crate::dataset::scan(dir)
}

/// Audio files (WAV, FLAC, MP3, Ogg) under `dir`, recursively, sorted by path.
pub fn audio_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, TrainError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| TrainError::io(&d, e))?;
        for e in entries {
            let p = e.map_err(|e| TrainError::io(&d, e))?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                matches!(
                    x.to_ascii_lowercase().as_str(),
                    "wav" | "flac" | "mp3" | "ogg"
                )
            }) {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no audio files (wav, flac, mp3, ogg)",
            dir.display()
        )));
    }
    Ok(out)
}

/// The speaker of a long recording: its file name up to the first `-` or `_` (LibriSpeech's
/// `<speaker>-<chapter>-<n>.flac`, Speech Commands' `<speaker>_nohash_<n>.wav`).
pub fn recording_speaker(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    stem.split(['-', '_']).next().unwrap_or(&stem).to_string()
}

/// Whether a long recording belongs to a held-out speaker of the speaker split
/// (`seed`, `val_percent`): its [`recording_speaker`] is a validation speaker.
pub fn is_held_out_recording(path: &Path, seed: u64, val_percent: u32) -> bool {
    crate::dataset::is_validation(&recording_speaker(path), seed, val_percent)
}

/// Keyword events over recordings in which nobody addresses the device.
#[derive(Clone, Debug, Serialize)]
pub struct FalseAcceptEval {
    pub files: usize,
    pub hours: f64,
    pub events: usize,
    pub events_per_hour: f64,
    /// Events the second-stage check (`[decision.confirm]`) turned down (0 without one).
    pub rejected: usize,
    /// Events per keyword, by label order (keywords with none left out).
    pub per_keyword: Vec<(String, usize)>,
    /// The files with the most events: (path, events, seconds).
    pub worst_files: Vec<(String, usize, f64)>,
    /// Every event, file by file in the order given and in time within a file, so each can be
    /// found and listened to.
    pub found: Vec<FalseAccept>,
    /// Files that could not be read to their end (path, reason); their events before the damage
    /// still count.
    pub errors: Vec<(String, String)>,
}

/// One event over a recording in which nobody addresses the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FalseAccept {
    /// The recording.
    pub file: String,
    /// The event, its times in seconds into the recording.
    #[serde(flatten)]
    pub event: Event,
}

/// Streams every file through the engine and the detector (`decision`, normally the spec's,
/// and the second-stage check `confirm`, if any), each from a reset state, and counts the
/// events: every one is a false accept.
pub fn eval_false_accepts(
    net: &Network,
    decision: &DecisionConfig,
    confirm: Option<&Arc<Confirm>>,
    files: &[std::path::PathBuf],
) -> Result<FalseAcceptEval, TrainError> {
    let (fe, _) = configs(net)?;
    let labels = &net.spec().labels;
    let per_file: Vec<(Vec<KeywordHit>, usize, f64, Option<String>)> = files
        .par_iter()
        .map(|path| {
            let mut events = Vec::new();
            let mut rejected = 0;
            let mut reader = match sepstream_audio::AudioReader::open(path) {
                Ok(r) => r,
                Err(e) => return (events, 0, 0.0, Some(e.to_string())),
            };
            let rate = reader.info().sample_rate;
            let spotter = match (Spotter::with_network(net, &fe, decision, rate), confirm) {
                (Ok(s), Some(c)) => s.with_confirm(Arc::clone(c)),
                (made, _) => made,
            };
            let r = match spotter {
                Ok(mut spotter) => spotter.push_reader(&mut reader, |hop| {
                    events.extend(hop.hit);
                    rejected += usize::from(hop.rejected.is_some());
                }),
                Err(e) => Err(e),
            };
            (
                events,
                rejected,
                reader.seconds_read(),
                r.err().map(|e| with_causes(&e)),
            )
        })
        .collect();
    let mut counts = vec![0usize; labels.len()];
    let mut seconds = 0.0;
    let mut errors = Vec::new();
    let mut worst = Vec::new();
    let mut rejected = 0;
    let mut found = Vec::new();
    for (path, (events, r, s, err)) in files.iter().zip(per_file) {
        rejected += r;
        for hit in &events {
            if let Some(c) = counts.get_mut(hit.label_index) {
                *c += 1;
            }
            found.push(FalseAccept {
                file: path.display().to_string(),
                event: Event::from_hit(hit, labels),
            });
        }
        seconds += s;
        worst.push((path.display().to_string(), events.len(), s));
        if let Some(e) = err {
            errors.push((path.display().to_string(), e));
        }
    }
    worst.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    worst.truncate(5);
    let events: usize = counts.iter().sum();
    let hours = seconds / 3600.0;
    Ok(FalseAcceptEval {
        files: files.len(),
        hours,
        events,
        events_per_hour: events as f64 / hours.max(1e-9),
        rejected,
        per_keyword: labels
            .iter()
            .cloned()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .collect(),
        worst_files: worst,
        found,
        errors,
    })
}

/// Signal-to-noise ratios (dB) at which keyword clips are put into a background by default.
pub const BACKGROUND_SNR_DB: (f32, f32) = (5.0, 20.0);

/// Builds one stream as [`build_stream`] does (words shuffled, seeded, 1-2 s apart), but over a
/// continuous background made of `background` recordings (speech, noise) resampled to `rate`,
/// each brought to the same level, played end to end from a seeded offset and brought to the
/// words' median level less the middle
/// of `snr_db` (dB; [`BACKGROUND_SNR_DB`] by default): every word is mixed into it at a random
/// SNR in that range against
/// the background under it, so the gaps hold running speech or noise and every event in them is
/// a false accept.
pub fn build_stream_on_background(
    clips: &[Clip],
    rate: u32,
    seed: u64,
    background: &[std::path::PathBuf],
    snr_db: (f32, f32),
) -> Result<(Vec<f32>, Vec<PlacedWord>), TrainError> {
    if !(snr_db.0.is_finite() && snr_db.1.is_finite() && snr_db.0 < snr_db.1) {
        return Err(TrainError::Data(format!(
            "SNR range {}..{} dB: expected LOW < HIGH",
            snr_db.0, snr_db.1
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6261_636b);
    let mut bed = Vec::new();
    for p in background {
        let (s, r) = sepstream_audio::read_audio(p)?;
        let s = sepstream_audio::resample_clip(&s, r, rate)?;
        // Each recording at one level (unit RMS), so that a quiet file joined to a loud one
        // does not make the words over it quiet too (every word is scaled to its SNR against
        // the background under it, and keeps its own level only where that level is typical).
        let level = crate::augment::power(&s).sqrt();
        let g = if level > 0.0 { 1.0 / level } else { 0.0 };
        bed.extend(s.iter().map(|v| v * g));
    }
    if bed.is_empty() {
        return Err(TrainError::Data("the background holds no audio".into()));
    }
    let (words_only, placed) = build_stream(
        &clips
            .iter()
            .filter(|c| c.label != SILENCE)
            .cloned()
            .collect::<Vec<_>>(),
        rate,
        seed,
    )?;
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt();
    // The background is brought to the words' typical level less the middle SNR, so the words
    // keep their own level (a louder word would clip) and the SNR range is met.
    let at = |t: f64| ((t * f64::from(rate)) as usize).min(words_only.len());
    let mut word_rms: Vec<f32> = placed
        .iter()
        .map(|w| rms(&words_only[at(w.start)..at(w.end).max(at(w.start))]))
        .filter(|r| *r > 0.0)
        .collect();
    word_rms.sort_by(f32::total_cmp);
    let typical = word_rms.get(word_rms.len() / 2).copied().unwrap_or(0.1);
    let middle_snr = (snr_db.0 + snr_db.1) / 2.0;
    let bed_gain = typical / 10f32.powf(middle_snr / 20.0) / rms(&bed).max(1e-9);
    let offset = rng.random_range(0..bed.len());
    let mut out: Vec<f32> = (0..words_only.len())
        .map(|i| bed_gain * bed[(offset + i) % bed.len()])
        .collect();
    let len = out.len();
    for (k, w) in placed.iter().enumerate() {
        let (a, b) = (at(w.start), at(w.end).max(at(w.start)));
        let word = &words_only[a..b];
        let (wr, br) = (rms(word), rms(&out[a..b]));
        let snr = rng.random_range(snr_db.0..snr_db.1);
        let mut gain = if wr > 0.0 && br > 0.0 {
            br * 10f32.powf(snr / 20.0) / wr
        } else {
            1.0
        };
        let peak = word.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if peak * gain > 0.99 {
            gain = 0.99 / peak;
        }
        // The whole clip (its quiet lead-in and tail too): from half-way after the previous
        // word's speech to half-way before the next one's.
        let from = if k == 0 {
            0
        } else {
            at((placed[k - 1].end + w.start) / 2.0)
        };
        let to = placed
            .get(k + 1)
            .map_or(len, |n| at((w.end + n.start) / 2.0));
        for (o, x) in out[from..to].iter_mut().zip(&words_only[from..to]) {
            *o += gain * x;
        }
    }
    Ok((out, placed))
}
