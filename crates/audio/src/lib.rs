//! sepstream-audio: WAV input, resampling, log-mel/MFCC features, microphone capture, keyword decisions.
