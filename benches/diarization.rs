//! Diarization bench (not a test): DER of the mono methods — `gaps` (the Python
//! worker's rule) and `cluster` (voice features + two-means) — and of stereo
//! channel labelling, on two-speaker calls made with espeak-ng (different
//! voices, pauses from 0.15 to 1.2 s, short back-channels), transcribed by the
//! real pipeline (`pipeline::recognise`) with a whisper model.
//!
//! Run: `cargo bench --bench diarization` (needs espeak-ng and
//! models/ggml-tiny.en.bin; CALLSCRIBE_BENCH_MODEL picks another model).
//! Writes the reference turns and hypotheses as RTTM files to
//! target/diarization-rttm/ for a cross-check with pyannote.metrics
//! (scripts/der_crosscheck.py).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use callscribe::asr::{AsrConfig, WhisperEngine};
use callscribe::audio::{resample::resample, Audio};
use callscribe::config::SpeakersConfig;
use callscribe::diarize::{der, Method};

/// Calls: pairs of voices. espeak-ng's en-us variants differ in pitch and
/// formants (median pitch measured: m1 99 Hz, m2 105, m4 99, m7 115, f2 200,
/// f3 227, f4 179); its en-gb voice ignores variants and shares en-us's voice
/// source, so the last pair is one "speaker" with two accents — a case no
/// voice-feature method can split, kept to show it.
const VOICES: &[(&str, &str)] = &[
    ("en-us+m1", "en-us+f2"),
    ("en-us+f3", "en-us+m1"),
    ("en-us+m7", "en-us+f4"),
    ("en-us+m2", "en-us+m4"),
    ("en-us", "en-gb+m3"),
];

const LINES: &[(usize, &str, f64)] = &[
    (0, "Good morning, this is Priya from Apex Finance calling about your loan account.", 0.6),
    (1, "Yes, speaking. What is this about?", 0.4),
    (0, "Your instalment of five thousand rupees was due last week and has not been received.", 0.3),
    (1, "I know. My salary came late this month.", 0.8),
    (0, "I understand. When can you make the payment?", 0.25),
    (1, "Okay.", 0.15),
    (1, "I can pay on Friday, the twenty third.", 0.5),
    (0, "Thank you. I will note a promise to pay on Friday.", 1.2),
    (1, "Will there be a late fee?", 0.3),
    (0, "A small fee of two hundred rupees applies. You can pay through the app or at the branch.", 0.4),
    (1, "Alright, thank you.", 0.2),
    (0, "Thank you for your time. Have a good day.", 0.5),
];

fn speak(voice: &str, text: &str, dir: &Path, tag: usize) -> Vec<f32> {
    let out = dir.join(format!("tts-{tag}.wav"));
    let st = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "160", "-w"])
        .arg(&out)
        .arg(text)
        .status()
        .expect("espeak-ng");
    assert!(st.success());
    let mut r = hound::WavReader::open(&out).unwrap();
    let rate = r.spec().sample_rate;
    let x: Vec<f32> = r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect();
    resample(&[x], rate, 16000).unwrap().remove(0)
}

type Turns = Vec<(f64, f64, String)>;

/// Per-leg audio and reference turns.
fn make_call(voices: (&str, &str), dir: &Path) -> ([Vec<f32>; 2], Turns) {
    let mut legs = [Vec::new(), Vec::new()];
    let mut turns = Vec::new();
    for (i, (who, text, pause)) in LINES.iter().enumerate() {
        let voice = if *who == 0 { voices.0 } else { voices.1 };
        let mut speech = speak(voice, text, dir, i);
        // Trim espeak's own leading/trailing silence so the pause is the pause
        // and the turn's edges are known to the sample: its first and last
        // sample above 1 % of its peak (a voice-activity pass would add its pads).
        let peak = speech.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if let (Some(a), Some(b)) =
            (speech.iter().position(|v| v.abs() > 0.01 * peak), speech.iter().rposition(|v| v.abs() > 0.01 * peak))
        {
            speech = speech[a..=b].to_vec();
        }
        let start = legs[0].len() as f64 / 16000.0;
        let n = speech.len();
        legs[*who].extend_from_slice(&speech);
        legs[1 - *who].extend(std::iter::repeat_n(0.0, n));
        turns.push((start, start + n as f64 / 16000.0, format!("spk{who}")));
        let p = (pause * 16000.0) as usize;
        legs[0].extend(std::iter::repeat_n(0.0, p));
        legs[1].extend(std::iter::repeat_n(0.0, p));
    }
    (legs, turns)
}

fn rttm(name: &str, turns: &Turns) -> String {
    turns
        .iter()
        .map(|(s, e, who)| format!("SPEAKER {name} 1 {s:.3} {:.3} <NA> <NA> {who} <NA> <NA>\n", e - s))
        .collect()
}

/// A mono call of `voices.len()` voices taking the script's lines in turn.
fn mono_call(voices: &[&str], dir: &Path, speed_tag: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for (i, (who, text, pause)) in LINES.iter().enumerate() {
        let voice = voices[(i + who) % voices.len()];
        out.extend(speak(voice, text, dir, 1000 + speed_tag * 100 + i));
        out.extend(std::iter::repeat_n(0.0, (pause * 16000.0) as usize));
    }
    out
}

/// Speaker-count accuracy of the clustering (no whisper needed): one-voice
/// monologues (voicemail, IVR), two-voice and three-voice calls, with the
/// separation of the two closest clusters printed for the threshold's choice.
fn count_speakers(dir: &Path) {
    use callscribe::diarize::{by_clustering, DISTINCT_VOICES, MORE_VOICES};
    const DISTINCT: &[&str] = &["en-us+m1", "en-us+m2", "en-us+m4", "en-us+m7", "en-us+f2", "en-us+f3", "en-us+f4"];
    let mut sets: Vec<(usize, Vec<&str>)> = Vec::new();
    for v in DISTINCT.iter().chain(&["en-us", "en-gb+m3"]) {
        sets.push((1, vec![*v]));
    }
    for (i, a) in DISTINCT.iter().enumerate() {
        for b in &DISTINCT[i + 1..] {
            sets.push((2, vec![*a, *b]));
        }
    }
    for k in 0..DISTINCT.len() {
        sets.push((3, vec![DISTINCT[k], DISTINCT[(k + 2) % DISTINCT.len()], DISTINCT[(k + 4) % DISTINCT.len()]]));
    }
    println!(
        "\nspeaker count (speakers.max = 3; thresholds {DISTINCT_VOICES} for 2, {MORE_VOICES} for 3): separation of \
         the two closest clusters for k = 2, 3\n"
    );
    println!("| voices | true | found | separation k=2 | k=3 |");
    println!("|---|---:|---:|---:|---:|");
    let mut right = [0usize; 4];
    let mut total = [0usize; 4];
    for (n, (truth, voices)) in sets.iter().enumerate() {
        let x = mono_call(voices, dir, n);
        let info = by_clustering(&x, 16000, &mut Vec::new(), 1, 3);
        total[*truth] += 1;
        right[*truth] += usize::from(info.speakers == *truth);
        let sep = |k: usize| info.separations.get(k).map_or("—".to_string(), |s| format!("{s:.2}"));
        println!("| {} | {truth} | {} | {} | {} |", voices.join(" / "), info.speakers, sep(0), sep(1));
    }
    for k in 1..=3 {
        println!("{k} voice(s): counted right in {}/{}", right[k], total[k]);
    }
}

fn main() {
    if std::env::var("CALLSCRIBE_BENCH_COUNT_ONLY").is_ok() {
        count_speakers(tempfile::tempdir().unwrap().path());
        return;
    }
    let model = std::env::var("CALLSCRIBE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ggml-tiny.en.bin"));
    let engine = WhisperEngine::load(AsrConfig { model, threads: 2, ..Default::default() }).expect("model");
    let dir = tempfile::tempdir().unwrap();
    let rttm_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/diarization-rttm");
    std::fs::create_dir_all(&rttm_dir).unwrap();
    let abort = AtomicBool::new(false);
    let speakers =
        |m| SpeakersConfig { channel_labels: vec!["spk0".into(), "spk1".into()], mono_method: m, ..Default::default() };

    println!(
        "diarization bench: {} two-speaker calls, {} turns each, model {}\n",
        VOICES.len(),
        LINES.len(),
        engine.model_name()
    );
    println!("| call | voices | gaps DER | cluster DER | stereo DER | gaps DER (0.25 s collar) | cluster DER (collar) | stereo DER (collar) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut sums = [0.0f64; 6];
    let only: Option<usize> = std::env::var("CS_ONLY_CALL").ok().and_then(|v| v.parse().ok());
    for (k, v) in VOICES.iter().enumerate() {
        if only.is_some_and(|o| o != k) {
            continue;
        }
        let (legs, reference) = make_call(*v, dir.path());
        let mono: Vec<f32> = legs[0].iter().zip(&legs[1]).map(|(a, b)| a + b).collect();
        let mono_audio = Audio { sample_rate: 16000, channels: vec![mono] };
        let stereo_audio = Audio { sample_rate: 16000, channels: legs.to_vec() };
        let name = format!("call{k}");
        std::fs::write(rttm_dir.join(format!("{name}.ref.rttm")), rttm(&name, &reference)).unwrap();
        if only.is_some() {
            for t in &reference {
                eprintln!("ref {:6.2}-{:6.2} {}", t.0, t.1, t.2);
            }
        }
        let mut row = Vec::new();
        let mut row_collar = Vec::new();
        for (label, audio, method) in [
            ("gaps", &mono_audio, Method::Gaps),
            ("cluster", &mono_audio, Method::Cluster),
            ("stereo", &stereo_audio, Method::Cluster),
        ] {
            let (t, _) = callscribe::pipeline::recognise(&engine, audio, &speakers(method), &abort).unwrap();
            let hyp: Turns =
                t.segments.iter().map(|s| (s.start, s.end, s.speaker.clone().unwrap_or_default())).collect();
            std::fs::write(rttm_dir.join(format!("{name}.{label}.rttm")), rttm(&name, &hyp)).unwrap();
            row.push(der::der(&reference, &hyp));
            row_collar.push(der::der_collar(&reference, &hyp, 0.25));
        }
        for (i, x) in row.iter().chain(&row_collar).enumerate() {
            sums[i] += x;
        }
        println!(
            "| {k} | {} / {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
            v.0,
            v.1,
            row[0] * 100.0,
            row[1] * 100.0,
            row[2] * 100.0,
            row_collar[0] * 100.0,
            row_collar[1] * 100.0,
            row_collar[2] * 100.0
        );
    }
    let n = VOICES.len() as f64;
    println!(
        "| mean | | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
        sums[0] / n * 100.0,
        sums[1] / n * 100.0,
        sums[2] / n * 100.0,
        sums[3] / n * 100.0,
        sums[4] / n * 100.0,
        sums[5] / n * 100.0
    );
    println!("\nRTTM files for scripts/der_crosscheck.py: {}", rttm_dir.display());
    count_speakers(dir.path());
}
