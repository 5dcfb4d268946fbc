//! Peers of the sepstream DS-CNN: the same model and weights run by candle and tract.
