//! `sepstream train`: trains a keyword model (candle) on a Speech Commands-layout folder with a
//! speaker-disjoint validation split, and exports the spec plus safetensors for sepstream-nn.

use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `sepstream train`.
#[derive(clap::Args)]
pub struct Args {
    /// Model spec whose layers, [frontend] and [decision] define the model (a template: any
    /// weights it names are ignored). The architectures tried: configs/kws_tc_10ms.toml (the
    /// shipped ensemble's members), configs/kws_tc.toml, configs/kws_sep2d.toml,
    /// configs/kws_dscnn.toml and configs/kws_ds_cnn_m.toml (with --init).
    #[arg(long, default_value = "configs/kws_tc.toml")]
    spec: PathBuf,
    /// Speech Commands-layout folder (one folder per label).
    #[arg(long, default_value = "../shared/data/speech_commands")]
    data: PathBuf,
    /// Extra training folders in the same layout (e.g. from scripts/synth_speech.sh); never validated on.
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Where to write the trained spec (the default replaces the shipped model).
    #[arg(long, default_value = "configs/kws.toml")]
    out: PathBuf,
    /// Weights file, relative to the output spec (default ../assets/<out file name>.safetensors
    /// when an assets folder is beside the spec's folder, else beside the spec).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Passes over the training clips (cosine learning-rate schedule over all of them).
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1e-3)]
    weight_decay: f64,
    /// Seed of the split, the initial weights, the augmentation and the batch order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seed of the speaker split alone (default: --seed), so that models trained with different
    /// seeds hold out the same speakers (the members of `sepstream ensemble`).
    #[arg(long)]
    split_seed: Option<u64>,
    /// Percent of speakers held out for validation.
    #[arg(long, default_value_t = 20)]
    val_percent: u32,
    /// Label smoothing (0 = plain cross-entropy).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Keep an exponential moving average of the weights with this decay per step (e.g. 0.99)
    /// and validate and export it instead of the raw weights (0 = off).
    #[arg(long, default_value_t = 0.0)]
    ema: f64,
    /// Mixup with Beta(ALPHA, ALPHA) blending weights (e.g. 0.2; 0 = off): each batch is mixed
    /// with a shuffled copy of itself, targets blended the same way.
    #[arg(long, default_value_t = 0.0)]
    mixup: f64,
    /// Dropout probability on the pooled features while training (e.g. 0.2; 0 = off).
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Distil from this trained model (spec + weights): its softened posteriors are a second
    /// target. A model with this run's front end (e.g. a `sepstream ensemble` of models trained
    /// on the same split) streams over every augmented clip; one with its own front end and a
    /// fixed window (an imported graph, e.g. configs/hello_edge_ds_cnn_l.toml) reads each clean
    /// training clip once.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Weight of the teacher's target (the label keeps 1 - this).
    #[arg(long, default_value_t = 0.5, requires = "teacher")]
    distill: f64,
    /// Temperature that softens the teacher's and the student's posteriors for distillation.
    #[arg(long, default_value_t = 2.0, requires = "teacher")]
    temperature: f64,
    /// Start from the weights of this trained model (spec + weights) instead of random ones:
    /// the --spec template must have its layers (causal here where it has `centered` ones) and
    /// its [frontend], e.g. configs/kws_ds_cnn_m.toml from configs/hello_edge_ds_cnn_m.toml.
    /// Its front end's normalisation is kept and BatchNorm trains as a fixed scale and shift.
    #[arg(long, value_name = "SPEC")]
    init: Option<PathBuf>,
    /// Augmentation settings as a TOML file (fields of sepstream_train::augment::AugmentConfig;
    /// missing fields keep their defaults), e.g. configs/augment_kws.toml (the shipped model's).
    #[arg(long, conflicts_with = "no_augment")]
    augment: Option<PathBuf>,
    /// Train without any augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Recordings in which nobody addresses the device (every WAV/FLAC/MP3/Ogg file under DIR;
    /// repeat for more), e.g. ../shared/data/speech/librispeech: cut into `_unknown_` windows,
    /// laid under word clips (the augmentation's `background_prob`) and mined for hard
    /// negatives. Split by speaker (the file name up to its first `-` or `_`) with the clips'
    /// split; held-out speakers are never used.
    #[arg(long, value_name = "DIR")]
    negatives: Vec<PathBuf>,
    /// `_unknown_` windows cut from --negatives per epoch.
    #[arg(long, default_value_t = 2000, requires = "negatives")]
    negative_windows: usize,
    /// Mine hard negatives after every N epochs (0 = never): the model streams over the
    /// training recordings and the windows where it fires (at --mine-threshold) join the
    /// negatives, up to half of each epoch's windows.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "negatives")]
    mine_every: usize,
    /// Decision threshold while mining (the spec's other decision settings apply).
    #[arg(long, default_value_t = 0.3, requires = "negatives")]
    mine_threshold: f32,
    /// Most hard-negative windows kept (the highest scores).
    #[arg(long, default_value_t = 3000, requires = "negatives")]
    mine_max: usize,
    /// Use at most this many clips (spread over all labels), for quick runs.
    #[arg(long)]
    max_clips: Option<usize>,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Keep the last epoch instead of the one with the best validation accuracy (with
    /// --negatives, the later epochs have learned from more rounds of hard negatives).
    #[arg(long)]
    keep_last: bool,
    /// Wall-clock budget in seconds: lowers --epochs after the first epoch to what fits.
    #[arg(long)]
    time_budget: Option<f64>,
    /// Don't write anything, just report.
    #[arg(long)]
    dry_run: bool,
}

impl Args {
    /// The options that shape the trained weights, as a command line that retrains them.
    #[cfg_attr(not(feature = "train"), allow(dead_code))]
    fn command_line(&self, epochs: usize) -> String {
        let mut s = format!(
            "--spec {} --data {}",
            self.spec.display(),
            self.data.display()
        );
        for e in &self.extra {
            s += &format!(" --extra {}", e.display());
        }
        s += &format!(
            " --epochs {epochs} --seed {} --batch-size {} --lr {} --weight-decay {} \
             --label-smoothing {} --ema {} --mixup {} --dropout {} --val-percent {}",
            self.seed,
            self.batch_size,
            self.lr,
            self.weight_decay,
            self.label_smoothing,
            self.ema,
            self.mixup,
            self.dropout,
            self.val_percent
        );
        if let Some(t) = &self.teacher {
            s += &format!(
                " --teacher {} --distill {} --temperature {}",
                t.display(),
                self.distill,
                self.temperature
            );
        }
        if let Some(i) = &self.init {
            s += &format!(" --init {}", i.display());
        }
        for n in &self.negatives {
            s += &format!(" --negatives {}", n.display());
        }
        if !self.negatives.is_empty() {
            s += &format!(
                " --negative-windows {} --mine-every {} --mine-threshold {} --mine-max {}",
                self.negative_windows, self.mine_every, self.mine_threshold, self.mine_max
            );
        }
        if let Some(k) = self.split_seed {
            s += &format!(" --split-seed {k}");
        }
        if self.keep_last {
            s += " --keep-last";
        }
        if let Some(a) = &self.augment {
            s += &format!(" --augment {}", a.display());
        }
        if self.no_augment {
            s += " --no-augment";
        }
        s
    }
}

#[cfg(not(feature = "train"))]
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this sepstream was built without training (candle is left out of the default build); \
         run it as: cargo run --release -p sepstream-cli --features train -- train ..."
    )
}

#[cfg(feature = "train")]
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use sepstream_nn::ModelSpec;
    use sepstream_train::augment::AugmentConfig;
    use sepstream_train::trainer::{self, TrainConfig};
    let template = ModelSpec::load(&args.spec)
        .with_context(|| format!("reading model spec {}", args.spec.display()))?;
    if !(0.0..1.0).contains(&args.label_smoothing) {
        anyhow::bail!(
            "--label-smoothing {}: must be at least 0 and below 1",
            args.label_smoothing
        );
    }
    if !(0.0..1.0).contains(&args.ema) {
        anyhow::bail!(
            "--ema {}: the decay must be at least 0 (off) and below 1",
            args.ema
        );
    }
    if !(args.mixup >= 0.0 && args.mixup.is_finite()) {
        anyhow::bail!("--mixup {}: alpha must be at least 0 (0 = off)", args.mixup);
    }
    if !(0.0..1.0).contains(&args.dropout) {
        anyhow::bail!(
            "--dropout {}: the probability must be at least 0 (off) and below 1",
            args.dropout
        );
    }
    if !(0.0..=1.0).contains(&args.distill) {
        anyhow::bail!("--distill {}: must be between 0 and 1", args.distill);
    }
    if !(args.temperature > 0.0 && args.temperature.is_finite()) {
        anyhow::bail!("--temperature {}: must be above 0", args.temperature);
    }
    if !(args.mine_threshold > 0.0 && args.mine_threshold < 1.0) {
        anyhow::bail!(
            "--mine-threshold {}: must be above 0 and below 1",
            args.mine_threshold
        );
    }
    let augment = match (&args.augment, args.no_augment) {
        (_, true) => AugmentConfig::none(),
        (Some(p), false) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading augmentation settings {}", p.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("augmentation settings {}", p.display()))?
        }
        (None, false) => AugmentConfig::default(),
    };
    release_freed_memory_lazily();
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size.max(1),
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
        split_seed: args.split_seed,
        val_percent: args.val_percent,
        label_smoothing: args.label_smoothing,
        ema: args.ema,
        mixup: args.mixup,
        dropout: args.dropout,
        teacher: args.teacher.clone(),
        distill: args.distill,
        temperature: args.temperature,
        init: args.init.clone(),
        augment,
        extra: args.extra.clone(),
        negatives: sepstream_train::negatives::NegativeConfig {
            dirs: args.negatives.clone(),
            windows_per_epoch: args.negative_windows,
            mine_every: args.mine_every,
            mine_threshold: args.mine_threshold,
            mine_max: args.mine_max,
        },
        max_clips: args.max_clips,
        max_steps: args.max_steps,
        keep_last: args.keep_last,
        time_budget: args.time_budget,
        ..TrainConfig::default()
    };
    // One tick per epoch; the log lines go above the bar (or plainly to stderr when not a tty).
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(cfg.epochs as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} epoch {pos}/{len} [{elapsed_precise}, eta {eta}] {wide_bar}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let trained = trainer::train(&args.data, &template, &cfg, &mut |m| {
        if bar.is_hidden() {
            eprintln!("{m}");
        } else {
            bar.println(m);
        }
        if m.starts_with("epoch") {
            bar.inc(1);
        } else if let Some(rest) = m.strip_prefix("time budget: ") {
            if let Some(n) = rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                bar.set_length(n);
            }
        }
    })
    .with_context(|| format!("training on {}", args.data.display()))?;
    bar.finish_and_clear();
    let r = &trained.report;
    println!(
        "{} validation accuracy: {:.4} (epoch {} of {}, {} clips of {} held-out speakers; {} train clips + {} extra; {:.0} s)",
        if args.keep_last { "last epoch's" } else { "best" },
        r.best_val_acc, r.best_epoch, r.epochs_used, r.n_val, r.n_val_speakers, r.n_train, r.n_extra, r.seconds
    );
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.clone();
    let weights = args
        .weights
        .clone()
        .unwrap_or_else(|| crate::default_weights_path(&out, &template.name));
    let provenance = format!(
        "trained by `sepstream train {}`: validation accuracy {:.4} on {} clips of {} held-out speakers ({}% speaker split, seed {})",
        args.command_line(r.epochs_used),
        r.best_val_acc,
        r.n_val,
        r.n_val_speakers,
        args.val_percent,
        args.split_seed.unwrap_or(args.seed)
    );
    let spec = sepstream_train::export::trained_spec(&template, &trained, &weights, &provenance)?;
    sepstream_train::export::write(&spec, &trained, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} and {}", out.display(), weights.display());
    Ok(ExitCode::SUCCESS)
}

/// Candle allocates and frees megabyte-sized tensors at every step; glibc hands such blocks back
/// to the kernel each time (mmap/munmap), which cost a third of the training time here. Keeping
/// them in the heap makes an epoch about 30% faster.
#[cfg(all(feature = "train", target_os = "linux", target_env = "gnu"))]
fn release_freed_memory_lazily() {
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before the
    // training threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(all(feature = "train", not(all(target_os = "linux", target_env = "gnu"))))]
fn release_freed_memory_lazily() {}
