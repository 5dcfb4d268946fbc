//! sepstream: causal, incremental depthwise-separable CNNs on live streams (facade crate).
pub use sepstream_audio as audio;
pub use sepstream_kws as kws;
pub use sepstream_nn as nn;
pub use sepstream_pipeline as pipeline;
pub use sepstream_vision as vision;
