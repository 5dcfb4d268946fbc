//! The layer kinds a spec names: one enum, each kind's name and the spec fields it takes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A layer kind as written in a spec's `kind = "..."`. What each kind computes is its op in
/// [`crate::layers`]; [`crate::build`] turns a kind and its fields into that op.
///
/// Other crates match it with a last arm for kinds they do not handle (`#[non_exhaustive]`):
/// a kind added here reaches the trainer and the exporters as a clear refusal, not a build
/// error in every crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LayerKind {
    Conv1d,
    Conv2d,
    Depthwise1d,
    Depthwise2d,
    Pointwise,
    Separable1d,
    Separable2d,
    Relu,
    Relu6,
    Identity,
    Avgpool,
    Dense,
    Softmax,
    Flatten,
}

/// The optional fields of a layer spec, as they are spelled in TOML.
pub type Field = &'static str;

const CONV_FIELDS: &[Field] = &[
    "out_channels",
    "kernel",
    "stride",
    "dilation",
    "activation",
    "centered",
    "pad_left",
    "groups",
];
const DEPTHWISE_FIELDS: &[Field] = &[
    "kernel",
    "stride",
    "dilation",
    "activation",
    "centered",
    "pad_left",
];

impl LayerKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [LayerKind; 14] = [
        LayerKind::Conv1d,
        LayerKind::Conv2d,
        LayerKind::Depthwise1d,
        LayerKind::Depthwise2d,
        LayerKind::Pointwise,
        LayerKind::Separable1d,
        LayerKind::Separable2d,
        LayerKind::Relu,
        LayerKind::Relu6,
        LayerKind::Identity,
        LayerKind::Avgpool,
        LayerKind::Dense,
        LayerKind::Softmax,
        LayerKind::Flatten,
    ];

    /// The name a spec uses.
    pub const fn name(self) -> &'static str {
        match self {
            LayerKind::Conv1d => "conv1d",
            LayerKind::Conv2d => "conv2d",
            LayerKind::Depthwise1d => "depthwise1d",
            LayerKind::Depthwise2d => "depthwise2d",
            LayerKind::Pointwise => "pointwise",
            LayerKind::Separable1d => "separable1d",
            LayerKind::Separable2d => "separable2d",
            LayerKind::Relu => "relu",
            LayerKind::Relu6 => "relu6",
            LayerKind::Identity => "identity",
            LayerKind::Avgpool => "avgpool",
            LayerKind::Dense => "dense",
            LayerKind::Softmax => "softmax",
            LayerKind::Flatten => "flatten",
        }
    }

    /// The optional fields this kind accepts, and those of them it requires. Any other field set
    /// in a spec is an error naming the layer.
    pub const fn fields(self) -> (&'static [Field], &'static [Field]) {
        match self {
            LayerKind::Conv1d
            | LayerKind::Conv2d
            | LayerKind::Separable1d
            | LayerKind::Separable2d => (CONV_FIELDS, &["out_channels", "kernel"]),
            LayerKind::Depthwise1d | LayerKind::Depthwise2d => (DEPTHWISE_FIELDS, &["kernel"]),
            LayerKind::Pointwise => (&["out_channels", "activation", "groups"], &["out_channels"]),
            LayerKind::Dense => (&["units", "activation"], &["units"]),
            LayerKind::Avgpool => (&["frames"], &["frames"]),
            LayerKind::Relu
            | LayerKind::Relu6
            | LayerKind::Identity
            | LayerKind::Softmax
            | LayerKind::Flatten => (&[], &[]),
        }
    }

    /// Whether kernel and stride are (time, width) pairs: the 2D convolutions. Their weights
    /// have a width axis; a 1D layer's kernel is one number.
    pub const fn two_d(self) -> bool {
        matches!(
            self,
            LayerKind::Conv2d | LayerKind::Depthwise2d | LayerKind::Separable2d
        )
    }

    /// The standard convolution of the same rank (what composing a separable layer gives).
    pub const fn standard_conv(two_d: bool) -> LayerKind {
        if two_d {
            LayerKind::Conv2d
        } else {
            LayerKind::Conv1d
        }
    }

    /// The separable layer of the same rank (what factorizing a standard convolution gives).
    pub const fn separable(two_d: bool) -> LayerKind {
        if two_d {
            LayerKind::Separable2d
        } else {
            LayerKind::Separable1d
        }
    }

    /// Every kind's name, comma separated (for error messages and help).
    pub fn known() -> String {
        Self::ALL.map(LayerKind::name).join(", ")
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no layer kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown layer kind `{0}`")]
pub struct UnknownKind(pub String);

impl FromStr for LayerKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

impl PartialEq<str> for LayerKind {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for LayerKind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_serde_agrees() {
        for kind in LayerKind::ALL {
            assert_eq!(kind.name().parse::<LayerKind>(), Ok(kind));
            let text = toml::Value::try_from(kind).unwrap();
            assert_eq!(text.as_str(), Some(kind.name()));
        }
        assert_eq!("lstm".parse::<LayerKind>(), Err(UnknownKind("lstm".into())));
    }

    #[test]
    fn required_fields_are_accepted_fields() {
        for kind in LayerKind::ALL {
            let (allowed, required) = kind.fields();
            assert!(required.iter().all(|f| allowed.contains(f)), "{kind}");
        }
    }
}
