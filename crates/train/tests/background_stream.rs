//! `evaluate::build_stream_on_background`: no word is made much quieter because the part of the
//! background under it comes from a quiet recording joined to a loud one.

use sepstream_train::dataset::SILENCE;
use sepstream_train::evaluate;

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn write_noise(path: &std::path::Path, level: f32, seconds: usize, seed: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut x = seed;
    for _ in 0..seconds * 16_000 {
        // A small LCG: uniform noise in -1..1, scaled.
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let u = (x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
        w.write_sample((u * level * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn words_keep_their_level_over_a_quiet_and_a_loud_recording_or_skip_without_shared() {
    let data = sepstream_testkit::shared_data().join("speech_commands");
    if !data.is_dir() {
        sepstream_testkit::skip(format!("{} not found", data.display()));
        return;
    }
    let dir = std::env::temp_dir().join(format!("sepstream-bed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 40 dB apart, each longer than the stream, so both lie under some words.
    let (loud, quiet) = (dir.join("a-loud.wav"), dir.join("b-quiet.wav"));
    write_noise(&loud, 0.3, 60, 1);
    write_noise(&quiet, 0.003, 60, 2);
    let clips: Vec<_> = evaluate::clips_of(&data)
        .unwrap()
        .into_iter()
        .filter(|c| c.label != SILENCE)
        .step_by(80)
        .collect();
    assert!(clips.len() >= 30);
    let seed = 5;
    let (words, placed) = evaluate::build_stream(&clips, 16_000, seed).unwrap();
    let (mixed, placed2) =
        evaluate::build_stream_on_background(&clips, 16_000, seed, &[loud, quiet], (10.0, 12.0))
            .unwrap();
    assert_eq!(placed, placed2);
    assert_eq!(words.len(), mixed.len());
    let at = |t: f64| ((t * 16_000.0) as usize).min(words.len());
    let mut ratios = Vec::new();
    for w in &placed {
        let (a, b) = (at(w.start), at(w.end));
        if b <= a {
            continue;
        }
        // The word's level in the mix against alone: its gain (plus the background, 10-12 dB down).
        ratios.push(rms(&mixed[a..b]) / rms(&words[a..b]).max(1e-9));
    }
    ratios.sort_by(f32::total_cmp);
    let lo = ratios[0];
    // Without each recording brought to one level, the words over the quiet one came out up
    // to 43 dB down (gain 0.007). Words quieter than the clips' median are still raised to
    // reach their SNR, so the largest gains say nothing here.
    assert!(lo > 0.3, "smallest word gain {lo} (gains {ratios:?})");
    std::fs::remove_dir_all(&dir).ok();
}
