//! Typed errors of sepstream-kws: each names the model and keeps its cause.

/// What can go wrong loading a keyword model or making a [`crate::Spotter`] for it.
#[derive(Debug, thiserror::Error)]
pub enum KwsError {
    /// The model's spec or weights could not be loaded or built.
    #[error("keyword model {origin}")]
    Model {
        /// Spec file, `bundled:NAME` or the model's name.
        origin: String,
        /// What sepstream-nn found.
        #[source]
        source: sepstream_nn::NnError,
    },
    /// The spec's `[frontend]` or `[decision]` table is invalid.
    #[error("keyword model {model}: its [frontend] or [decision] settings")]
    Settings {
        /// The model's name.
        model: String,
        /// What sepstream-audio found.
        #[source]
        source: sepstream_audio::AudioError,
    },
    /// The network's output frame does not hold one posterior per label.
    #[error("keyword model {model:?}: output has {outputs} values but {labels} labels")]
    Labels {
        /// The model's name.
        model: String,
        /// Values per output frame.
        outputs: usize,
        /// Labels of the spec.
        labels: usize,
    },
    /// The network reads frames of another length than the front end makes.
    #[error(
        "keyword model {model:?}: input frame has {inputs} values but the front end makes {features}"
    )]
    Features {
        /// The model's name.
        model: String,
        /// Values per input frame of the network.
        inputs: usize,
        /// Values per feature frame of the front end.
        features: usize,
    },
    /// No model of this name is compiled in.
    #[error("no bundled model {name:?}")]
    NotBundled {
        /// The name looked up.
        name: String,
    },
    /// The front end cannot be made for this input rate.
    #[error("front end at {rate} Hz")]
    FrontEnd {
        /// The input rate asked for.
        rate: u32,
        /// What sepstream-audio found.
        #[source]
        source: sepstream_audio::AudioError,
    },
    /// An audio source was given to a spotter made for another rate.
    #[error("audio at {actual} Hz given to a spotter made for {expected} Hz")]
    InputRate {
        /// The spotter's input rate.
        expected: u32,
        /// The source's rate.
        actual: u32,
    },
    /// The second-stage model of `[decision.confirm]` does not fit the model it checks.
    #[error("keyword model {model}: [decision.confirm]: {reason}")]
    Confirm {
        /// The model whose events are checked.
        model: String,
        /// The checking model and what does not fit.
        reason: String,
    },
    /// The audio source could not be read (to its end).
    #[error(transparent)]
    Read(sepstream_audio::AudioError),
}

/// `e` and its causes, one after the other (`: `-separated), for messages that carry an error
/// as text.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
