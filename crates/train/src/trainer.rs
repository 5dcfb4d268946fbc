//! The training loop: load clips, split by speaker, augment, extract features with sepstream-audio's
//! front end, train the candle model with AdamW, keep the best epoch by validation accuracy.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sepstream_audio::{FeatureExtractor, FrontendConfig};
use sepstream_kws::ModelSettings;
use sepstream_nn::ModelSpec;

use crate::augment::{self, AugmentConfig};
use crate::dataset::{self, Clip, SILENCE, UNKNOWN};
use crate::evaluate::argmax;
use crate::model::KwsModel;
use crate::negatives::{self, HardNegative, NegativeConfig, Recordings};
use crate::TrainError;

/// Training settings. `Default` is the recipe of the shipped models.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Label smoothing: the target puts this much probability mass evenly on all classes.
    pub label_smoothing: f64,
    /// Decay of an exponential moving average of the weights, validated and kept instead of the
    /// raw weights (0 = off).
    pub ema: f64,
    /// Mixup: each batch is blended with a shuffled copy of itself by a weight drawn from
    /// Beta(alpha, alpha) (folded to at least 0.5), and the loss blends the two targets the
    /// same way (0 = off).
    pub mixup: f64,
    /// Dropout probability on the pooled features during training (0 = off).
    pub dropout: f64,
    /// Knowledge distillation: a trained model (spec + weights) whose posteriors, softened by
    /// `temperature`, are a second target with weight `distill` (the label keeps `1 - distill`).
    /// A teacher with this run's front end (e.g. an ensemble from `sepstream ensemble` on the
    /// same split) streams over each augmented training clip; one with its own front end and a
    /// fixed window (`[decision] window`, e.g. an imported graph) reads each clean clip of the
    /// data folder once, and that posterior is the target of all its augmentations; `_silence_`,
    /// the extra clips and the windows of the recordings without commands keep their label.
    pub teacher: Option<PathBuf>,
    pub distill: f64,
    pub temperature: f64,
    /// Start from this trained model's weights instead of random ones (spec + weights with the
    /// template's layers and front end, e.g. an imported graph): its front end's normalisation is
    /// kept, and BatchNorm trains as a fixed-statistics scale and shift.
    pub init: Option<PathBuf>,
    pub seed: u64,
    /// Seed of the speaker split alone (`None`: `seed`), so models trained with different seeds
    /// can share one split, e.g. the members of an ensemble.
    pub split_seed: Option<u64>,
    /// Percent of speakers held out for validation.
    pub val_percent: u32,
    pub augment: AugmentConfig,
    /// Frames of context before each training clip (zeros or background audio).
    pub context_frames: usize,
    /// Extra training folders (e.g. synthesized speech); never used for validation.
    pub extra: Vec<PathBuf>,
    /// Recordings without commands: `_unknown_` windows, backgrounds, hard negatives.
    pub negatives: NegativeConfig,
    /// Use at most this many clips of the data folder (before the split), for quick runs.
    pub max_clips: Option<usize>,
    /// Stop after this many optimizer steps in total (quick runs and tests).
    pub max_steps: Option<usize>,
    /// Keep the last epoch's weights instead of the epoch with the best validation accuracy
    /// (which, judged on clips alone, tends to be an early one, before hard-negative mining has
    /// taught the model what to ignore).
    pub keep_last: bool,
    /// Wall-clock budget in seconds: after the first epoch, the number of epochs is lowered to
    /// what fits (the first epoch does not depend on it, so `--epochs <used>` reproduces the run).
    pub time_budget: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 64,
            lr: 3e-3,
            weight_decay: 1e-3,
            label_smoothing: 0.0,
            ema: 0.0,
            mixup: 0.0,
            dropout: 0.0,
            teacher: None,
            distill: 0.5,
            temperature: 2.0,
            init: None,
            seed: 1,
            split_seed: None,
            val_percent: 20,
            augment: AugmentConfig::default(),
            context_frames: 25,
            extra: Vec::new(),
            negatives: NegativeConfig::default(),
            max_clips: None,
            max_steps: None,
            keep_last: false,
            time_budget: None,
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Debug)]
pub struct EpochLog {
    pub epoch: usize,
    pub steps: usize,
    pub loss: f32,
    pub train_acc: f32,
    pub val_acc: f32,
    pub seconds: f64,
}

/// What a training run did.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub n_train: usize,
    pub n_extra: usize,
    pub n_val: usize,
    pub n_val_speakers: usize,
    /// The epoch whose weights were kept (the best by validation accuracy, or the last with
    /// [`TrainConfig::keep_last`]) and its validation accuracy.
    pub best_epoch: usize,
    pub best_val_acc: f32,
    /// Epochs the schedule was set for (lowered by a time budget).
    pub epochs_used: usize,
    pub epochs: Vec<EpochLog>,
    /// Loss of every optimizer step.
    pub step_losses: Vec<f32>,
    pub seconds: f64,
}

/// A loaded clip: samples at the model rate, exactly one clip long.
pub struct LoadedClip {
    pub clip: Clip,
    pub samples: Vec<f32>,
}

/// Reads a WAV with sepstream-audio, resamples to `rate` if needed and keeps the loudest
/// `len`-sample window (centred zero padding when shorter).
pub fn read_clip(path: &Path, rate: u32, len: usize) -> Result<Vec<f32>, TrainError> {
    let (mono, r) = sepstream_audio::read_audio(path)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    let mono = sepstream_audio::resample_clip(&mono, r, rate)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    Ok(loudest_window(&mono, len))
}

/// The `len`-sample window with the most energy (centred padding when shorter).
fn loudest_window(x: &[f32], len: usize) -> Vec<f32> {
    if x.len() <= len {
        return augment::fit_length(x, len);
    }
    let mut best = 0;
    let mut e: f32 = x[..len].iter().map(|v| v * v).sum();
    let mut be = e;
    for s in 1..=(x.len() - len) {
        e += x[s + len - 1] * x[s + len - 1] - x[s - 1] * x[s - 1];
        if e > be {
            be = e;
            best = s;
        }
    }
    x[best..best + len].to_vec()
}

fn load_all(clips: Vec<Clip>, rate: u32, len: usize) -> Result<Vec<LoadedClip>, TrainError> {
    clips
        .into_par_iter()
        .map(|clip| {
            let samples = read_clip(&clip.path, rate, len)?;
            Ok(LoadedClip { clip, samples })
        })
        .collect()
}

/// Per-feature mean and standard deviation over the given clips' clean features.
pub fn feature_stats(cfg: &FrontendConfig, clips: &[LoadedClip]) -> (Vec<f32>, Vec<f32>) {
    let f = cfg.feature_len();
    let sums = clips
        .par_iter()
        .map_init(
            || FeatureExtractor::new(cfg),
            |fx, c| {
                let feats = fx.clip(&c.samples);
                let mut s = vec![0f64; 2 * f + 1];
                for fr in feats.chunks(f) {
                    for (j, v) in fr.iter().enumerate() {
                        s[j] += f64::from(*v);
                        s[f + j] += f64::from(*v) * f64::from(*v);
                    }
                    s[2 * f] += 1.0;
                }
                s
            },
        )
        .reduce(
            || vec![0f64; 2 * f + 1],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let n = sums[2 * f].max(1.0);
    let mean: Vec<f32> = (0..f).map(|j| (sums[j] / n) as f32).collect();
    let std: Vec<f32> = (0..f)
        .map(|j| {
            let m = sums[j] / n;
            ((sums[f + j] / n - m * m).max(1e-8).sqrt()) as f32
        })
        .collect();
    (mean, std)
}

/// Clean features of each clip with `context` zero frames before it (the stream's zero start)
/// and `tail` samples of silence after it (the spec's `[decision] clip_tail`).
pub fn clean_features(
    cfg: &FrontendConfig,
    clips: &[LoadedClip],
    context: usize,
    tail: usize,
) -> Vec<Vec<f32>> {
    let f = cfg.feature_len();
    clips
        .par_iter()
        .map_init(
            || FeatureExtractor::new(cfg),
            |fx, c| {
                let mut v = vec![0.0; context * f];
                let mut s = c.samples.clone();
                s.resize(s.len() + tail, 0.0);
                v.extend(fx.clip(&s));
                v
            },
        )
        .collect()
}

/// Accuracy of the model on pre-extracted equal-length feature sequences.
pub fn accuracy(
    model: &KwsModel,
    feats: &[Vec<f32>],
    labels: &[usize],
    shape: (usize, usize),
) -> Result<(f32, Vec<usize>), TrainError> {
    let mut correct = 0;
    let mut preds = Vec::with_capacity(feats.len());
    for (chunk, lab) in feats.chunks(256).zip(labels.chunks(256)) {
        let x = batch_tensor(chunk, shape, model)?;
        let p = model
            .forward(&x, false)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        for (a, b) in p.iter().zip(lab) {
            preds.push(*a as usize);
            if *a as usize == *b {
                correct += 1;
            }
        }
    }
    Ok((correct as f32 / feats.len().max(1) as f32, preds))
}

fn batch_tensor(
    chunk: &[Vec<f32>],
    shape: (usize, usize),
    model: &KwsModel,
) -> Result<Tensor, TrainError> {
    let (w, c) = shape;
    let t = chunk[0].len() / (w * c);
    let flat: Vec<f32> = chunk.iter().flat_map(|v| v.iter().copied()).collect();
    Ok(Tensor::from_vec(
        flat,
        (chunk.len(), t, w, c),
        model.device(),
    )?)
}

/// Everything a trained model needs for export.
pub struct Trained {
    pub model: KwsModel,
    pub frontend: FrontendConfig,
    pub report: TrainReport,
}

/// Trains `template` (a spec whose layers and `[frontend]` define the model) on `data`.
pub fn train(
    data: &Path,
    template: &ModelSpec,
    cfg: &TrainConfig,
    log: &mut dyn FnMut(&str),
) -> Result<Trained, TrainError> {
    let start = Instant::now();
    // The template's [frontend] and [decision], with the defaults every keyword model shares.
    let ModelSettings {
        frontend: mut fe,
        decision,
    } = ModelSettings::from_spec(template)?;
    fe.mean = None;
    fe.std = None;
    let f = fe.feature_len();
    let shape = (template.input.width, template.input.channels);
    if shape.0 * shape.1 != f {
        return Err(TrainError::Spec(format!(
            "input {}x{} does not match the front end's {} features",
            shape.0, shape.1, f
        )));
    }
    let rate = fe.sample_rate;
    let clip_len = rate as usize;
    // Clips are classified `clip_tail` seconds after their end, in training as in evaluation.
    let tail = crate::evaluate::tail_samples(decision.clip_tail, rate);

    let mut all = dataset::scan(data)?;
    if let Some(m) = cfg.max_clips {
        // A deterministic spread over every label: take every k-th clip.
        let k = all.len().div_ceil(m.max(1)).max(1);
        all = all.into_iter().step_by(k).collect();
    }
    let (tr, va) =
        dataset::split_by_speaker(&all, cfg.split_seed.unwrap_or(cfg.seed), cfg.val_percent);
    let n_val_speakers = {
        let mut s: Vec<&str> = va.iter().map(|c| c.speaker.as_str()).collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let mut extra = Vec::new();
    for d in &cfg.extra {
        extra.extend(dataset::scan(d)?);
    }
    log(&format!(
        "data: {} train clips, {} validation clips ({} speakers), {} extra clips",
        tr.len(),
        va.len(),
        n_val_speakers,
        extra.len()
    ));
    let n_train = tr.len();
    let n_extra = extra.len();
    let mut train_clips = load_all(tr, rate, clip_len)?;
    train_clips.extend(load_all(extra, rate, clip_len)?);
    let val_clips = load_all(va, rate, clip_len)?;
    let noise: Vec<Vec<f32>> = train_clips
        .iter()
        .filter(|c| c.clip.label == SILENCE)
        .map(|c| c.samples.clone())
        .collect();

    let recordings = if cfg.negatives.dirs.is_empty() {
        None
    } else {
        let split_seed = cfg.split_seed.unwrap_or(cfg.seed);
        let r = Recordings::load(&cfg.negatives.dirs, rate, split_seed, cfg.val_percent)?;
        if r.is_empty() {
            return Err(TrainError::Data(format!(
                "negatives: no audio of training speakers under {}",
                cfg.negatives
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        log(&format!(
            "negatives: {} recordings of training speakers, {:.1} min ({} held out); {} `_unknown_` windows an epoch",
            r.beds.len(),
            r.total() as f64 / f64::from(rate) / 60.0,
            r.held_out,
            cfg.negatives.windows_per_epoch
        ));
        Some(r)
    };
    let n_negative = if recordings.is_some() {
        cfg.negatives.windows_per_epoch
    } else {
        0
    };
    let mut hard: Vec<HardNegative> = Vec::new();

    let init = match &cfg.init {
        Some(p) => {
            let (weights, normalisation) = load_init(p, &fe, template)?;
            log(&format!(
                "initial weights: {} ({} tensors; its front end's normalisation kept)",
                p.display(),
                weights.tensors.len()
            ));
            (fe.mean, fe.std) = normalisation;
            Some((p, weights))
        }
        None => {
            let (mean, std) = feature_stats(&fe, &train_clips[..n_train]);
            fe.mean = Some(mean);
            fe.std = Some(std);
            None
        }
    };
    let teacher = match &cfg.teacher {
        Some(p) => Some(match load_teacher(p, &fe, template)? {
            (net, None) => Teacher::Stream(Box::new(net)),
            (net, Some((frontend, window))) => {
                let t0 = Instant::now();
                let real = &train_clips[..n_train];
                let judged = window_targets(&net, &frontend, window, real, rate, cfg.temperature)?;
                let agree = judged
                    .iter()
                    .zip(real)
                    .filter(|(q, c)| argmax(q) == c.clip.label)
                    .count();
                log(&format!(
                    "teacher {}: its own front end, one {window} s window a clip; agrees with the label on {agree} of {} training clips ({:.1}s); `_silence_` and the extra clips keep their labels",
                    p.display(),
                    real.len(),
                    t0.elapsed().as_secs_f64()
                ));
                // `_silence_` clips keep their label: the imported DS-CNN-L calls a quarter of
                // them (loud background noise) `_unknown_`, and a student taught so does too.
                // The extra clips (e.g. synthesized near words, there to teach what the
                // teacher does not know) keep theirs too.
                let own = |c: &LoadedClip| {
                    label_target(c.clip.label, cfg.label_smoothing, cfg.temperature)
                };
                let fixed = judged
                    .into_iter()
                    .zip(real)
                    .map(|(q, c)| if c.clip.label == SILENCE { own(c) } else { q })
                    .chain(train_clips[n_train..].iter().map(own))
                    .collect();
                Teacher::Fixed(fixed)
            }
        }),
        None => None,
    };
    if teacher.is_some() && cfg.mixup > 0.0 {
        return Err(TrainError::Spec(
            "a teacher and mixup together are not supported".into(),
        ));
    }
    let val_feats = clean_features(&fe, &val_clips, 0, tail);
    let val_labels: Vec<usize> = val_clips.iter().map(|c| c.clip.label).collect();
    if tail > 0 {
        log(&format!(
            "each clip is classified {} s after its end (the spec's [decision] clip_tail)",
            decision.clip_tail
        ));
    }
    log(&format!(
        "features ready in {:.1}s",
        start.elapsed().as_secs_f64()
    ));

    let mut model = KwsModel::new(template, cfg.seed)?;
    if let Some((p, weights)) = &init {
        model.init_from(weights, p)?;
    }
    log(&format!(
        "model {}: {} parameters",
        template.name,
        model.num_params()
    ));
    let mut opt = AdamW::new(
        model.vars().to_vec(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let steps_per_epoch = (train_clips.len() + n_negative).div_ceil(cfg.batch_size);
    let mut epochs_used = cfg.epochs;
    let mut total_steps = cfg
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * cfg.epochs)
        .max(1);
    // One epoch of warm-up (independent of the epoch count, see `time_budget`).
    let warmup = if cfg.max_steps.is_some() {
        (total_steps / 10).max(1)
    } else {
        steps_per_epoch
    };
    let mut step = 0usize;
    let mut report = TrainReport {
        n_train,
        n_extra,
        n_val: val_clips.len(),
        n_val_speakers,
        best_epoch: 0,
        best_val_acc: -1.0,
        epochs_used: cfg.epochs,
        epochs: Vec::new(),
        step_losses: Vec::new(),
        seconds: 0.0,
    };
    let mut best = model.snapshot()?;
    let mut ema = if cfg.ema > 0.0 {
        Some(model.snapshot()?)
    } else {
        None
    };
    let ctx = cfg.context_frames;
    let mixup = if cfg.mixup > 0.0 {
        Some(
            rand_distr::Beta::new(cfg.mixup, cfg.mixup)
                .map_err(|e| TrainError::Spec(format!("mixup {}: {e}", cfg.mixup)))?,
        )
    } else {
        None
    };
    let mut mix_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x006d_6978_7570);
    let mut drop_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0000_6472_6f70);
    let mut epoch = 0;
    'epochs: while epoch < epochs_used {
        let t0 = Instant::now();
        let mut feats = epoch_features(
            &fe,
            &train_clips,
            &noise,
            recordings.as_ref(),
            cfg,
            epoch,
            ctx,
            tail,
        );
        let mut epoch_labels: Vec<u32> = train_clips.iter().map(|c| c.clip.label as u32).collect();
        if let Some(r) = &recordings {
            let negs = negative_features(&fe, r, &hard, &noise, cfg, epoch, ctx, tail);
            epoch_labels.extend(std::iter::repeat_n(UNKNOWN as u32, negs.len()));
            feats.extend(negs);
        }
        let soft_targets = match &teacher {
            Some(Teacher::Stream(t)) => Some(teacher_targets(t, &feats, cfg.temperature)),
            Some(Teacher::Fixed(q)) => {
                let mut q = q.clone();
                let unknown = label_target(UNKNOWN, cfg.label_smoothing, cfg.temperature);
                q.resize(feats.len(), unknown);
                Some(q)
            }
            None => None,
        };
        let mut order: Vec<usize> = (0..feats.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed ^ ((epoch as u64) << 32),
        ));
        let (mut loss_sum, mut n_loss, mut correct) = (0f64, 0usize, 0usize);
        for idx in order.chunks(cfg.batch_size) {
            let lr = if step < warmup {
                cfg.lr * (step + 1) as f64 / warmup as f64
            } else {
                let p = (step - warmup) as f64 / (total_steps - warmup).max(1) as f64;
                cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
            };
            opt.set_learning_rate(lr);
            let chunk: Vec<Vec<f32>> = idx.iter().map(|&i| feats[i].clone()).collect();
            let labels: Vec<u32> = idx.iter().map(|&i| epoch_labels[i]).collect();
            let x = batch_tensor(&chunk, shape, &model)?;
            let y = Tensor::new(labels.as_slice(), model.device())?;
            let (logits, loss) = match &mixup {
                Some(beta) => {
                    let lam: f64 = rand_distr::Distribution::sample(beta, &mut mix_rng);
                    let lam = lam.max(1.0 - lam);
                    let mut perm: Vec<u32> = (0..idx.len() as u32).collect();
                    perm.shuffle(&mut mix_rng);
                    let perm = Tensor::new(perm.as_slice(), model.device())?;
                    let x = ((&x * lam)? + (x.index_select(&perm, 0)? * (1.0 - lam))?)?;
                    let logits = model.forward_dropout(&x, cfg.dropout, &mut drop_rng)?;
                    let la = smoothed_cross_entropy(&logits, &y, cfg.label_smoothing)?;
                    let lb = smoothed_cross_entropy(
                        &logits,
                        &y.index_select(&perm, 0)?,
                        cfg.label_smoothing,
                    )?;
                    let loss = ((la * lam)? + (lb * (1.0 - lam))?)?;
                    (logits, loss)
                }
                None => {
                    let logits = model.forward_dropout(&x, cfg.dropout, &mut drop_rng)?;
                    let loss = smoothed_cross_entropy(&logits, &y, cfg.label_smoothing)?;
                    let loss = match &soft_targets {
                        Some(q) => {
                            let n = q[0].len();
                            let flat: Vec<f32> =
                                idx.iter().flat_map(|&i| q[i].iter().copied()).collect();
                            let q = Tensor::from_vec(flat, (idx.len(), n), model.device())?;
                            let t = cfg.temperature;
                            let kd = soft_cross_entropy(&(&logits / t)?, &q)?;
                            ((loss * (1.0 - cfg.distill))? + (kd * (cfg.distill * t * t))?)?
                        }
                        None => loss,
                    };
                    (logits, loss)
                }
            };
            opt.backward_step(&loss)?;
            if let Some(avg) = ema.as_mut() {
                // Early steps average over fewer steps (the usual debiasing of a cold start).
                let d = cfg.ema.min((1 + step) as f64 / (10 + step) as f64);
                for (a, now) in avg.iter_mut().zip(model.snapshot()?) {
                    *a = ((&*a * d)? + (now * (1.0 - d))?)?;
                }
            }
            let l = loss.to_scalar::<f32>()?;
            let p = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            correct += p.iter().zip(&labels).filter(|(a, b)| a == b).count();
            report.step_losses.push(l);
            loss_sum += f64::from(l) * idx.len() as f64;
            n_loss += idx.len();
            step += 1;
            if step >= total_steps {
                break;
            }
        }
        // With an average, the averaged weights are judged (and kept), then training goes on
        // from the raw ones.
        let raw = match &ema {
            Some(avg) => {
                let raw = model.snapshot()?;
                model.restore(avg)?;
                Some(raw)
            }
            None => None,
        };
        let (val_acc, _) = if val_feats.is_empty() {
            (0.0, Vec::new())
        } else {
            accuracy(&model, &val_feats, &val_labels, shape)?
        };
        let e = EpochLog {
            epoch: epoch + 1,
            steps: step,
            loss: (loss_sum / n_loss.max(1) as f64) as f32,
            train_acc: correct as f32 / n_loss.max(1) as f32,
            val_acc,
            seconds: t0.elapsed().as_secs_f64(),
        };
        log(&format!(
            "epoch {:3}  step {:6}  loss {:.4}  train acc {:.4}  val acc {:.4}  ({:.1}s)",
            e.epoch, e.steps, e.loss, e.train_acc, e.val_acc, e.seconds
        ));
        if cfg.keep_last || val_acc > report.best_val_acc {
            report.best_val_acc = val_acc;
            report.best_epoch = epoch + 1;
            best = model.snapshot()?;
        }
        let every = cfg.negatives.mine_every;
        if let Some(r) = recordings.as_ref().filter(|_| every > 0) {
            if (epoch + 1) % every == 0 && epoch + 1 < epochs_used {
                // The weights just judged (the average, with --ema) stream over the training
                // recordings; where they fire becomes a negative of the next epochs.
                let t = Instant::now();
                let net = current_network(&model, template, &fe)?;
                let found = negatives::mine(&net, &fe, &decision, cfg.negatives.mine_threshold, r)?;
                let fired = found.len();
                let new = negatives::merge(
                    &mut hard,
                    found,
                    cfg.negatives.mine_max,
                    (0.3 * f64::from(rate)) as usize,
                );
                log(&format!(
                    "hard negatives: fires {fired} times at threshold {} on the {:.1} min of training recordings ({:.0} per hour), {new} new, {} kept ({:.1}s)",
                    cfg.negatives.mine_threshold,
                    r.total() as f64 / f64::from(rate) / 60.0,
                    fired as f64 * 3600.0 * f64::from(rate) / r.total() as f64,
                    hard.len(),
                    t.elapsed().as_secs_f64()
                ));
            }
        }
        if let Some(raw) = raw {
            model.restore(&raw)?;
        }
        if epoch == 0 {
            if let Some(b) = cfg.time_budget {
                let elapsed = start.elapsed().as_secs_f64();
                let fit = (((b - elapsed) / e.seconds.max(1e-3)).floor() as usize + 1).max(2);
                if fit < epochs_used {
                    epochs_used = fit;
                    total_steps = total_steps.min(steps_per_epoch * epochs_used);
                    log(&format!("time budget: {epochs_used} epochs fit (rerun with --epochs {epochs_used} to reproduce)"));
                }
            }
        }
        report.epochs.push(e);
        epoch += 1;
        if step >= total_steps {
            break 'epochs;
        }
    }
    report.epochs_used = epochs_used;
    model.restore(&best)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(Trained {
        model,
        frontend: fe,
        report,
    })
}

/// Cross-entropy against targets that put `eps` of their mass evenly on every class
/// (`eps = 0` is plain cross-entropy).
fn smoothed_cross_entropy(logits: &Tensor, y: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ce = candle_nn::loss::cross_entropy(logits, y)?;
    if eps <= 0.0 {
        return Ok(ce);
    }
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let uniform = logp.mean(D::Minus1)?.mean_all()?.neg()?;
    (ce * (1.0 - eps))? + (uniform * eps)?
}

/// Cross-entropy of `logits` against soft targets `q` (rows summing to 1), batch mean.
fn soft_cross_entropy(logits: &Tensor, q: &Tensor) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    (q * logp)?.sum(D::Minus1)?.mean_all()?.neg()
}

/// A model the student learns from ([`TrainConfig::teacher`]).
enum Teacher {
    /// Reads this run's features: streamed over every augmented clip, every epoch.
    Stream(Box<sepstream_nn::Network>),
    /// The softened posteriors of a teacher with its own front end and fixed window on each
    /// training clip (or the clip's own label), computed once.
    Fixed(Vec<Vec<f32>>),
}

/// Loads a teacher model and checks it gives this run's labels and reads either this run's
/// features (`None` beside it) or its own front end's over a fixed window of `window`
/// seconds (`Some((frontend, window))`).
fn load_teacher(
    path: &Path,
    fe: &FrontendConfig,
    template: &ModelSpec,
) -> Result<(sepstream_nn::Network, Option<(FrontendConfig, f64)>), TrainError> {
    let net = sepstream_nn::Network::load(path)?;
    let teacher = ModelSettings::from_spec(net.spec())?;
    let labels = dataset::labels();
    let n = labels.len();
    let spec_labels = &net.spec().labels;
    if net.output_shape().len() != n || (!spec_labels.is_empty() && spec_labels != &labels) {
        return Err(TrainError::Spec(format!(
            "teacher {}: gives {} outputs ({}); this run needs {n} ({})",
            path.display(),
            net.output_shape().len(),
            spec_labels.join(", "),
            labels.join(", ")
        )));
    }
    if &teacher.frontend != fe {
        if teacher.decision.window > 0.0 {
            return Ok((net, Some((teacher.frontend, teacher.decision.window))));
        }
        return Err(TrainError::Spec(format!(
            "teacher {}: its [frontend] differs from this run's and it names no fixed window (`[decision] window`): train it on the same split, with the same front end",
            path.display()
        )));
    }
    if net.input_shape().len() != fe.feature_len() {
        return Err(TrainError::Spec(format!(
            "teacher {}: reads {} values a frame; this run needs {} ({})",
            path.display(),
            net.input_shape().len(),
            fe.feature_len(),
            template.name
        )));
    }
    Ok((net, None))
}

/// The weights of a trained model to start from, checked to give this run's labels and to read
/// the template's front end (normalisation aside), with that normalisation (mean, std).
#[allow(clippy::type_complexity)]
fn load_init(
    path: &Path,
    fe: &FrontendConfig,
    template: &ModelSpec,
) -> Result<(sepstream_nn::Weights, (Option<Vec<f32>>, Option<Vec<f32>>)), TrainError> {
    let net = sepstream_nn::Network::load(path)?;
    let labels = dataset::labels();
    let spec_labels = &net.spec().labels;
    if net.output_shape().len() != labels.len()
        || (!spec_labels.is_empty() && spec_labels != &labels)
    {
        return Err(TrainError::Spec(format!(
            "initial weights {}: the model gives {} outputs ({}); this run needs {} ({})",
            path.display(),
            net.output_shape().len(),
            spec_labels.join(", "),
            labels.len(),
            labels.join(", ")
        )));
    }
    let mut theirs = ModelSettings::from_spec(net.spec())?.frontend;
    let normalisation = (theirs.mean.take(), theirs.std.take());
    if &theirs != fe {
        return Err(TrainError::Spec(format!(
            "initial weights {}: its [frontend] differs from {}'s (the weights were trained on other features): give the template the same [frontend] table",
            path.display(),
            template.name
        )));
    }
    Ok((net.weights(), normalisation))
}

/// A window teacher's posterior on each clean clip (one fresh window of its own features, as
/// `eval --windowed` reads it), softened by `temperature`.
fn window_targets(
    net: &sepstream_nn::Network,
    frontend: &FrontendConfig,
    window: f64,
    clips: &[LoadedClip],
    rate: u32,
    temperature: f64,
) -> Result<Vec<Vec<f32>>, TrainError> {
    clips
        .par_iter()
        .map(|c| {
            let p = crate::evaluate::classify_window(net, frontend, &c.samples, rate, window)?
                .ok_or_else(|| {
                    TrainError::Data(format!(
                        "teacher: no output for {} ({window} s window)",
                        c.clip.path.display()
                    ))
                })?;
            Ok(soften(&p, temperature))
        })
        .collect()
}

/// `softmax(ln p / temperature)` of a posterior `p`.
fn soften(p: &[f32], temperature: f64) -> Vec<f32> {
    let logits: Vec<f64> = p
        .iter()
        .map(|p| f64::from(p.max(1e-30)).ln() / temperature)
        .collect();
    let m = logits.iter().cloned().fold(f64::MIN, f64::max);
    let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
    logits.iter().map(|l| ((l - m).exp() / z) as f32).collect()
}

/// The distillation target of a clip the teacher does not judge: its label with `smoothing`
/// softened by `temperature` like a teacher's posterior, so the student's best answer there is
/// the label-smoothed target, as without a teacher (a one-hot target at a temperature above 1
/// would ask for logits that many times sharper).
fn label_target(label: usize, smoothing: f64, temperature: f64) -> Vec<f32> {
    let n = dataset::labels().len();
    let off = smoothing / n as f64;
    let p: Vec<f32> = (0..n)
        .map(|i| {
            (if i == label {
                1.0 - smoothing + off
            } else {
                off
            }) as f32
        })
        .collect();
    soften(&p, temperature)
}

/// The teacher's last posterior on every clip (streamed from a reset state, as `eval` does),
/// softened: `softmax(ln p / temperature)`.
fn teacher_targets(
    teacher: &sepstream_nn::Network,
    feats: &[Vec<f32>],
    temperature: f64,
) -> Vec<Vec<f32>> {
    let f = teacher.input_shape().len();
    feats
        .par_iter()
        .map_init(
            || teacher.new_state(),
            |st, x| {
                st.reset();
                let mut last = vec![0.0; teacher.output_shape().len()];
                teacher.step_many(st, x, |o| last.copy_from_slice(o));
                debug_assert_eq!(x.len() % f, 0);
                soften(&last, temperature)
            },
        )
        .collect()
}

/// One epoch of augmented training features, each `context + clip + tail` frames long (the
/// tail is `tail` samples of silence, or of the background the context was drawn from).
#[allow(clippy::too_many_arguments)]
fn epoch_features(
    fe: &FrontendConfig,
    clips: &[LoadedClip],
    noise: &[Vec<f32>],
    recordings: Option<&Recordings>,
    cfg: &TrainConfig,
    epoch: usize,
    ctx: usize,
    tail: usize,
) -> Vec<Vec<f32>> {
    let f = fe.feature_len();
    let ctx_samples = ctx * fe.hop;
    let rate = fe.sample_rate;
    clips
        .par_iter()
        .enumerate()
        .map_init(
            || FeatureExtractor::new(fe),
            |fx, (i, c)| {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    cfg.seed
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add((epoch as u64) << 24)
                        .wrapping_add(i as u64),
                );
                let is_sil = c.clip.label == SILENCE;
                let y = augment::augment_samples(
                    &c.samples,
                    rate,
                    is_sil,
                    noise,
                    &cfg.augment,
                    &mut rng,
                );
                // Drawn only when a background can be used, so runs without one are unchanged.
                let bed = recordings.filter(|_| {
                    !is_sil
                        && cfg.augment.background_prob > 0.0
                        && rng.random::<f32>() < cfg.augment.background_prob
                });
                let with_ctx = bed.is_none()
                    && ctx > 0
                    && !noise.is_empty()
                    && rng.random::<f32>() < cfg.augment.context_prob;
                let mut feats = if let Some(r) = bed {
                    // The clip over running audio that also fills its context and tail.
                    let mut s = r.random_window(ctx_samples + y.len() + tail, &mut rng);
                    let snr = augment::uniform(&mut rng, cfg.augment.background_snr_db);
                    let g = augment::snr_gain(augment::power(&y), augment::power(&s), snr)
                        .unwrap_or(0.0);
                    s.iter_mut().for_each(|v| *v *= g);
                    for (o, v) in s[ctx_samples..].iter_mut().zip(&y) {
                        *o += v;
                    }
                    fx.clip(&s)
                } else if with_ctx {
                    // Background before the clip, at a random level, through the same front end.
                    let n = &noise[rng.random_range(0..noise.len())];
                    let g = 10f32.powf(rng.random_range(-30.0f32..0.0) / 20.0);
                    let mut s: Vec<f32> = (0..ctx_samples).map(|k| g * n[k % n.len()]).collect();
                    s.extend_from_slice(&y);
                    s.extend((0..tail).map(|k| g * n[(ctx_samples + k) % n.len()]));
                    fx.clip(&s)
                } else {
                    let mut v = vec![0.0; ctx * f];
                    let mut y = y;
                    y.resize(y.len() + tail, 0.0);
                    v.extend(fx.clip(&y));
                    v
                };
                let t = feats.len() / f;
                augment::spec_augment(&mut feats, t, f, ctx.min(t), &cfg.augment, &mut rng);
                feats
            },
        )
        .collect()
}

/// One epoch's `_unknown_` windows from the recordings without commands, each as long as a
/// training clip with its context and tail: up to half of them end where a model fired
/// (`hard`, a little before or after), the rest at fresh places; gain and noise as for clips.
#[allow(clippy::too_many_arguments)]
fn negative_features(
    fe: &FrontendConfig,
    recordings: &Recordings,
    hard: &[HardNegative],
    noise: &[Vec<f32>],
    cfg: &TrainConfig,
    epoch: usize,
    ctx: usize,
    tail: usize,
) -> Vec<Vec<f32>> {
    let f = fe.feature_len();
    let rate = fe.sample_rate;
    let len = ctx * fe.hop + rate as usize + tail;
    let n = cfg.negatives.windows_per_epoch;
    let n_hard = hard.len().min(n / 2);
    (0..n)
        .into_par_iter()
        .map_init(
            || FeatureExtractor::new(fe),
            |fx, j| {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    (cfg.seed ^ 0x6e65_6761_7469_7665)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add((epoch as u64) << 24)
                        .wrapping_add(j as u64),
                );
                let mut x = if j < n_hard {
                    let h = hard[rng.random_range(0..hard.len())];
                    let jitter = (rng.random_range(-0.05f32..0.25) * rate as f32) as i64;
                    recordings.window_ending(h.bed, (h.end as i64 + jitter).max(0) as usize, len)
                } else {
                    recordings.random_window(len, &mut rng)
                };
                let g = 10f32.powf(augment::uniform(&mut rng, cfg.augment.gain_db) / 20.0);
                x.iter_mut().for_each(|v| *v *= g);
                if !noise.is_empty() && rng.random::<f32>() < cfg.augment.noise_prob {
                    let nz = &noise[rng.random_range(0..noise.len())];
                    let snr = augment::uniform(&mut rng, cfg.augment.snr_db);
                    augment::mix_noise(&mut x, nz, snr);
                }
                let mut feats = fx.clip(&x);
                let t = feats.len() / f;
                augment::spec_augment(&mut feats, t, f, ctx.min(t), &cfg.augment, &mut rng);
                feats
            },
        )
        .collect()
}

/// The model's current weights as a streaming network (for mining), with this run's front end.
fn current_network(
    model: &KwsModel,
    template: &ModelSpec,
    fe: &FrontendConfig,
) -> Result<sepstream_nn::Network, TrainError> {
    let spec = crate::export::spec_with_frontend(template, fe)?;
    let bytes = model.export_safetensors()?;
    Ok(sepstream_nn::Network::from_spec_and_weights(spec, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn manual(logits: &[[f32; 3]], y: &[usize], eps: f32) -> f32 {
        let mut total = 0.0;
        for (row, &t) in logits.iter().zip(y) {
            let m = row.iter().cloned().fold(f32::MIN, f32::max);
            let z: f32 = row.iter().map(|v| (v - m).exp()).sum();
            let logp: Vec<f32> = row.iter().map(|v| v - m - z.ln()).collect();
            let target: Vec<f32> = (0..3)
                .map(|k| eps / 3.0 + if k == t { 1.0 - eps } else { 0.0 })
                .collect();
            total -= target.iter().zip(&logp).map(|(a, b)| a * b).sum::<f32>();
        }
        total / y.len() as f32
    }

    #[test]
    fn label_smoothing_matches_soft_target_cross_entropy() {
        let rows = [[2.0f32, -1.0, 0.5], [0.1, 0.2, 3.0]];
        let y = [0usize, 1];
        let logits = Tensor::new(&rows, &Device::Cpu).unwrap();
        let t = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        for eps in [0.0f32, 0.1, 0.3] {
            let got = smoothed_cross_entropy(&logits, &t, f64::from(eps))
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let want = manual(&rows, &y, eps);
            assert!((got - want).abs() < 1e-5, "eps {eps}: {got} vs {want}");
        }
    }

    /// A student whose logits are `ln` of the label-smoothed target minimises the distillation
    /// loss against [`label_target`] at any temperature: softmax(logits / T) is that target.
    #[test]
    fn a_label_target_asks_for_the_smoothed_label() {
        let n = dataset::labels().len();
        for (label, eps, t) in [(UNKNOWN, 0.1, 2.0), (3, 0.0, 1.0), (5, 0.2, 4.0)] {
            let q = label_target(label, eps, t);
            assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let smoothed: Vec<f64> = (0..n)
                .map(|i| eps / n as f64 + if i == label { 1.0 - eps } else { 0.0 })
                .collect();
            let z: Vec<f64> = smoothed.iter().map(|p| p.max(1e-30).ln() / t).collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
            for (i, v) in z.iter().enumerate() {
                let want = (v - m).exp() / sum;
                assert!(
                    (f64::from(q[i]) - want).abs() < 1e-5,
                    "{label} {eps} {t}: {i}"
                );
            }
            assert_eq!(argmax(&q), label);
            if t > 1.0 && eps > 0.0 {
                // Softer than the smoothed label itself.
                assert!(f64::from(q[label]) < 1.0 - eps + eps / n as f64);
            }
        }
    }
}
