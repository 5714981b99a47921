//! Every format a call recorder writes decodes to the same audio: a stereo test
//! call (440 Hz on the left leg, 880 Hz on the right) is encoded with ffmpeg as
//! WAV (8/16/24/32-bit, float, µ-law, A-law), MP3, OGG/Vorbis, FLAC and AAC/M4A,
//! then taken in: channels kept apart, duration right, 16 kHz out, tones intact.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use callscribe::audio::{self, TARGET_RATE};

fn stereo_source(path: &Path, rate: u32, secs: f32) {
    let spec =
        hound::WavSpec { channels: 2, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * secs) as u32 {
        let t = i as f32 / rate as f32;
        for f in [440.0f32, 880.0] {
            w.write_sample(((2.0 * std::f32::consts::PI * f * t).sin() * 0.4 * 32767.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

fn ffmpeg(src: &Path, dst: &Path, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(src)
        .args(args)
        .arg(dst)
        .output()
        .expect("ffmpeg is needed to make the test files (apt-get install ffmpeg; .ci/run installs it)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Dominant frequency from zero crossings (clean tones only).
fn tone_hz(x: &[f32], rate: u32) -> f32 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    crossings as f32 / 2.0 / (x.len() as f32 / rate as f32)
}

#[test]
fn common_formats_decode_to_the_same_call() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.wav");
    stereo_source(&src, 8000, 2.0);
    let cases: &[(&str, &[&str], f64)] = &[
        ("s16.wav", &[], 0.001),
        ("u8.wav", &["-c:a", "pcm_u8"], 0.001),
        ("s24.wav", &["-c:a", "pcm_s24le"], 0.001),
        ("s32.wav", &["-c:a", "pcm_s32le"], 0.001),
        ("f32.wav", &["-c:a", "pcm_f32le"], 0.001),
        ("mulaw.wav", &["-c:a", "pcm_mulaw"], 0.001),
        ("alaw.wav", &["-c:a", "pcm_alaw"], 0.001),
        ("call.mp3", &["-c:a", "libmp3lame", "-b:a", "32k"], 0.08),
        ("call.ogg", &["-c:a", "libvorbis"], 0.08),
        ("call.flac", &["-c:a", "flac"], 0.001),
        // symphonia 0.5 keeps AAC priming and end padding (one 1024-frame block each).
        ("call.m4a", &["-c:a", "aac", "-b:a", "48k"], 0.2),
    ];
    for (name, args, tolerance) in cases {
        let path = dir.path().join(name);
        ffmpeg(&src, &path, args);
        let ext = Path::new(name).extension().unwrap().to_str();
        let intake = audio::intake(&path, ext, Duration::from_secs(3600)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let q = &intake.quality;
        assert_eq!(q.channels, 2, "{name}");
        assert!((q.duration_seconds - 2.0).abs() <= *tolerance, "{name}: {} s", q.duration_seconds);
        assert!(q.rms_dbfs > -14.0 && q.rms_dbfs < -9.0, "{name}: level {}", q.rms_dbfs);
        let a = &intake.audio16k;
        assert_eq!(a.sample_rate, TARGET_RATE);
        assert_eq!(a.channels.len(), 2);
        let expect_len = (q.duration_seconds * TARGET_RATE as f64).round() as i64;
        assert!((a.frames() as i64 - expect_len).abs() <= 1, "{name}: {} frames", a.frames());
        let mid = &a.channels[0][4000..a.frames() - 4000];
        let right = &a.channels[1][4000..a.frames() - 4000];
        let (l, r) = (tone_hz(mid, TARGET_RATE), tone_hz(right, TARGET_RATE));
        assert!((l - 440.0).abs() < 15.0, "{name}: left leg at {l} Hz");
        assert!((r - 880.0).abs() < 25.0, "{name}: right leg at {r} Hz");
    }
}

#[test]
fn max_duration_is_enforced_for_compressed_audio_too() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.wav");
    stereo_source(&src, 8000, 3.0);
    let mp3 = dir.path().join("long.mp3");
    ffmpeg(&src, &mp3, &["-c:a", "libmp3lame"]);
    let err = audio::intake(&mp3, Some("mp3"), Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, audio::AudioError::TooLong { .. }), "{err}");
}

/// Damage in the middle of a file (4 KB of garbage at 5 s of a 10 s MP3 and OGG)
/// is skipped and counted, and the rest of the call is decoded: before, decoding
/// stopped at the first bad packet and silently kept only the first part.
/// (Symphonia's Ogg reader drops about 3 s around such damage without an error;
/// the shortfall against the container's declared length is counted.)
#[test]
fn damage_mid_file_is_skipped_and_counted_not_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.wav");
    stereo_source(&src, 16000, 10.0);
    for (name, args, at_least) in
        [("call.mp3", &["-c:a", "libmp3lame"][..], 8.5), ("call.ogg", &["-c:a", "libvorbis"][..], 6.0)]
    {
        let path = dir.path().join(name);
        ffmpeg(&src, &path, args);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        let mut x = 0x9e37_79b9u32;
        for b in &mut bytes[mid..mid + 4096] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        let (audio, skipped) =
            callscribe::audio::decode::decode_counted(&path, Some(&name[5..]), Duration::from_secs(3600)).unwrap();
        let seconds = audio.duration_seconds();
        eprintln!("{name}: {seconds:.2} s decoded, {skipped} damaged packets skipped");
        assert!(seconds > at_least, "{name}: only {seconds:.2} s of 10 s decoded: cut short at the damage");
        assert!(skipped > 0, "{name}: the damage was not counted");
    }
}
