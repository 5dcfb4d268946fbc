//! FrontendConfig parsing: defaults, the model-spec table, and a typed error for each invalid field; FeatureStream rejects bad input rates.

use sepstream_audio::{AudioError, FeatureExtractor, FeatureStream, FrontendConfig, MelScale};

#[test]
fn empty_table_gives_documented_defaults() {
    let c = FrontendConfig::from_table(&toml::Table::new()).unwrap();
    assert_eq!(c, FrontendConfig::default());
    assert_eq!(c.sample_rate(), 16000);
    assert_eq!((c.window, c.hop, c.n_fft, c.n_mels), (640, 320, 1024, 40));
    assert_eq!(c.feature_len(), 40);
    assert_eq!(c.f_max(), 8000.0);
    assert_eq!(c.frame_rate(), 50.0);
}

#[test]
fn spec_table_parses() {
    let c = FrontendConfig::from_toml_str(
        "sample_rate = 16000\nwindow = 480\nhop = 160\nn_fft = 512\nn_mels = 40\nf_min = 20\n\
         f_max = 7600\nmel_scale = \"slaney\"\npreemphasis = 0.97\nn_mfcc = 10\n\
         mean = [0,0,0,0,0,0,0,0,0,0]\nstd = [1,1,1,1,1,1,1,1,1,1]\n",
    )
    .unwrap();
    assert_eq!(c.mel_scale, MelScale::Slaney);
    assert_eq!(c.feature_len(), 10);
    assert_eq!(c.frame_rate(), 100.0);
    assert_eq!(c.f_max(), 7600.0);
}

#[test]
fn invalid_fields_are_typed_errors() {
    for bad in [
        "windw = 640",              // unknown key
        "hop = 321",                // > 20 ms at 16 kHz
        "hop = 0",
        "window = 200\nhop = 300",  // hop > window
        "n_fft = 512",              // < window 640
        "n_mels = 0",
        "n_mels = 600",             // > n_fft/2 + 1
        "sample_rate = 0",
        "sample_rate = 999999999",
        "f_max = 9000",             // > Nyquist
        "f_min = 5000\nf_max = 4000",
        "log_floor = 0",
        "preemphasis = 1.5",
        "n_mfcc = 0",
        "n_mfcc = 41",
        "mean = [1.0, 2.0]",        // wrong length
        "std = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
        "mel_scale = \"bark\"",
        "window = \"long\"",
    ] {
        let e = FrontendConfig::from_toml_str(bad).unwrap_err();
        assert!(
            matches!(e, AudioError::Config { what: "frontend", .. }),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn hand_built_invalid_config_is_rejected_by_try_new_and_stream() {
    let cfg = FrontendConfig {
        hop: 10_000,
        ..Default::default()
    };
    assert!(FeatureExtractor::try_new(&cfg).is_err());
    assert!(FeatureStream::new(&cfg, 16000).is_err());
}

#[test]
fn stream_rejects_absurd_input_rates() {
    let cfg = FrontendConfig::default();
    for rate in [0u32, 1, 999, 384_001, u32::MAX] {
        let e = FeatureStream::new(&cfg, rate).err().expect("must fail");
        assert!(matches!(e, AudioError::Resample { .. }), "{rate}: {e:?}");
    }
    for rate in [8000u32, 11025, 22050, 44100, 44101, 48000, 96000, 384_000] {
        assert!(FeatureStream::new(&cfg, rate).is_ok(), "{rate}");
    }
}
