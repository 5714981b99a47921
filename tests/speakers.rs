//! The voice encoder (`speakers.voice_model`, Resemblyzer's d-vector network run
//! by hand): its output equals an independent implementation's, it tells voices
//! apart, and the mono clustering built on it finds one voice in a monologue and
//! two in a dialogue. Needs models/voice-encoder.safetensors
//! (`scripts/fetch-models.sh`) and espeak-ng.

mod common;

use std::path::Path;

use callscribe::diarize::{by_clustering, voice::VoiceEncoder};

fn encoder() -> VoiceEncoder {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/voice-encoder.safetensors");
    VoiceEncoder::load(&path).expect("models/voice-encoder.safetensors: run scripts/fetch-models.sh")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Reference values from numpy and librosa 0.11 (`librosa.feature.melspectrogram`
/// with `pad_mode="reflect"`, the LSTM written out in numpy from PyTorch's
/// equations) on the same 2 s signal: a 220 Hz tone with a 3 Hz tremolo and a
/// 1330 Hz tone.
#[test]
fn embedding_equals_an_independent_numpy_implementation() {
    let enc = encoder();
    let x: Vec<f32> = (0..32_000)
        .map(|i| {
            let t = i as f64 / 16000.0;
            let tau = std::f64::consts::TAU;
            (0.3 * (tau * 220.0 * t).sin() * (1.0 + 0.5 * (tau * 3.0 * t).sin()) + 0.1 * (tau * 1330.0 * t).sin())
                as f32
        })
        .collect();
    let mel = enc.mel(&x);
    assert_eq!(mel.len(), 201 * 40);
    let e = enc.embed(&x);
    assert_eq!(e.len(), 256);
    assert!((cosine(&e, &e) - 1.0).abs() < 1e-4);
    for (dim, want) in [(0, 0.10856), (2, 0.12646), (4, 0.04117), (149, 0.32996), (10, 0.27929), (197, 0.24009)] {
        assert!((e[dim] as f64 - want).abs() < 2e-3, "dimension {dim}: {} against numpy's {want}", e[dim]);
    }
    assert_eq!(e[1], 0.0, "ReLU zeroes it");
}

#[test]
fn voices_are_told_apart_and_clustered() {
    let dir = tempfile::tempdir().unwrap();
    let enc = encoder();
    let lines = [
        "Good morning, this is Priya from Apex Finance calling about your loan account.",
        "Your instalment of five thousand rupees was due last week and has not been received.",
        "I can pay on Friday, the twenty third, when my salary comes in.",
        "Thank you for your time. Have a good day.",
    ];
    let said =
        |voice: &str| -> Vec<Vec<f32>> { lines.iter().map(|l| common::speak_16k(voice, l, 160, dir.path())).collect() };
    let (a, b) = (said("en-us+m1"), said("en-us+f3"));
    let ea: Vec<Vec<f32>> = a.iter().map(|x| enc.embed(x)).collect();
    let eb: Vec<Vec<f32>> = b.iter().map(|x| enc.embed(x)).collect();
    // Every pair of lines by one voice is closer than any line of one voice to
    // any line of the other.
    let same = (0..4).flat_map(|i| (i + 1..4).flat_map(move |j| [(i, j, true), (i, j, false)]));
    let closest_same = same
        .map(|(i, j, first)| if first { cosine(&ea[i], &ea[j]) } else { cosine(&eb[i], &eb[j]) })
        .fold(f32::MAX, f32::min);
    let farthest_other =
        (0..4).flat_map(|i| (0..4).map(move |j| (i, j))).map(|(i, j)| cosine(&ea[i], &eb[j])).fold(f32::MIN, f32::max);
    assert!(closest_same > farthest_other, "same voice {closest_same:.3}, other voice {farthest_other:.3}");

    // A monologue stays one speaker; a dialogue of the two is split in two.
    let pause = vec![0.0f32; 8000];
    let join = |parts: Vec<&Vec<f32>>| -> Vec<f32> {
        parts.into_iter().flat_map(|p| p.iter().chain(&pause)).copied().collect()
    };
    let monologue = join(a.iter().collect());
    let dialogue = join(a.iter().zip(&b).flat_map(|(x, y)| [x, y]).collect());
    let one = by_clustering(&monologue, 16000, &mut Vec::new(), 1, 3, Some(&enc));
    assert_eq!(one.speakers, 1, "{one:?}");
    let two = by_clustering(&dialogue, 16000, &mut Vec::new(), 1, 3, Some(&enc));
    assert_eq!(two.speakers, 2, "{two:?}");
}
