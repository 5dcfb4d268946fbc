//! Fuzz target: the audio reader (WAV, FLAC, MP3, Ogg/Vorbis told by their bytes) on arbitrary bytes from memory, as from a pipe.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = sepstream_audio::AudioReader::from_reader(
        std::path::Path::new("-"),
        Box::new(std::io::Cursor::new(data.to_vec())),
    ) else {
        return;
    };
    assert!(reader.info().sample_rate > 0);
    let mut block = Vec::new();
    // Bounded: a reader must end (at the end, or with an error) on a finite input.
    for _ in 0..1_000_000 {
        match reader.read_block(&mut block) {
            Ok(0) | Err(_) => break,
            Ok(n) => assert!(block.len() == n && block.iter().all(|v| v.is_finite())),
        }
    }
});
