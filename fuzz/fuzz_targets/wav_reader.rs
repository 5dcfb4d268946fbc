//! Fuzz target: the WAV reader on arbitrary bytes (through a file, as the reader takes a path).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("sepstream-fuzz-{}.wav", std::process::id()));
    std::fs::write(&path, data).expect("writing the fuzz input");
    if let Ok((samples, rate)) = sepstream_audio::read_wav(&path) {
        assert!(rate > 0 || samples.is_empty());
    }
});
