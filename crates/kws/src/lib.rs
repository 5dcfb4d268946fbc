//! sepstream-kws: keyword spotting in one place, from a model spec to keyword events.
//!
//! - [`KwsModel`]: a keyword model ready to run: the network (spec and weights), its front end
//!   ([`FrontendConfig`], the spec's `[frontend]`) and decision settings ([`DecisionConfig`],
//!   the spec's `[decision]`), loaded from a spec file ([`KwsModel::load`]), the model compiled
//!   into the library ([`KwsModel::bundled_default`]) or a network ([`KwsModel::from_network`]).
//!   [`ModelSettings::from_spec`] reads the two tables of a spec alone (one set of defaults for
//!   every caller: the audio crate's `Default`s).
//! - [`Spotter`]: samples in (any block size, at the rate it was made for; resampled to the
//!   model's rate by the front end), keyword hits out: [`sepstream_audio::FeatureStream`] ->
//!   [`sepstream_nn::Network::step`] -> [`sepstream_audio::KeywordDetector`], one [`Hop`] per
//!   feature frame. Everything is made in the constructor; pushing allocates nothing.
//! - [`Confirm`]: a second-stage check (`[decision.confirm]`): a model made for fixed windows
//!   re-reads the audio before each event, which goes out only if it agrees
//!   ([`Spotter::with_confirm`]).
//! - [`Event`]: a hit with its keyword's name; [`Trace`]: every frame, posterior and event of a
//!   run kept for a picture (allocates, opt in).

mod confirm;
mod error;
mod model;
mod spotter;

pub use confirm::{Confirm, Confirmer};
pub use error::{with_causes, KwsError};
pub use model::{KwsModel, ModelSettings, RANDOM_WEIGHTS_SEED};
pub use sepstream_audio::{ConfirmConfig, DecisionConfig, FrontendConfig, KeywordHit};
pub use spotter::{Event, Hop, Spotter, Trace};
