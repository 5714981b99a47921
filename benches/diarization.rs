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
//!
//! `CALLSCRIBE_BENCH_REAL=1`: mono DER and speaker counts on real recorded
//! conversation instead (see [`real_speech`]; `CALLSCRIBE_FETCH_REAL_SPEECH=1
//! scripts/fetch-models.sh` fetches it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use callscribe::asr::{AsrConfig, WhisperEngine};
use callscribe::audio::{resample::resample, Audio};
use callscribe::config::SpeakersConfig;
use callscribe::diarize::voice::{Embedder, VoiceEncoder};
use callscribe::diarize::{der, Method};

/// Calls: pairs of voices. espeak-ng's en-us variants differ in pitch and
/// formants (median pitch measured: m1 99 Hz, m2 105, m4 99, m7 115, f2 200,
/// f3 227, f4 179); its en-gb voice ignores variants and shares en-us's voice
/// source, so the last pair is one "speaker" with two accents — a case no
/// voice-feature method can split, kept to show it. With
/// `CALLSCRIBE_BENCH_VOICES=mbrola`, pairs of MBROLA voices (real speakers'
/// diphones; see [`voice_set`]), the last pair two men of one accent.
fn call_voices() -> Vec<(&'static str, &'static str)> {
    if std::env::var("CALLSCRIBE_BENCH_VOICES").as_deref() == Ok("mbrola") {
        return vec![
            ("mb-us2", "mb-us1"),
            ("mb-en1", "mb-fr4-en"),
            ("mb-de2-en", "mb-de1-en"),
            ("mb-us3", "mb-en1"),
            ("mb-us2", "mb-us3"),
        ];
    }
    vec![
        ("en-us+m1", "en-us+f2"),
        ("en-us+f3", "en-us+m1"),
        ("en-us+m7", "en-us+f4"),
        ("en-us+m2", "en-us+m4"),
        ("en-us", "en-gb+m3"),
    ]
}

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

/// Speech without espeak's own leading and trailing silence, so that the pause
/// is the pause and the turn's edges are known to the sample: its first and
/// last sample above 1 % of its peak (a voice-activity pass would add its pads).
fn trimmed(speech: Vec<f32>) -> Vec<f32> {
    let peak = speech.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    match (speech.iter().position(|v| v.abs() > 0.01 * peak), speech.iter().rposition(|v| v.abs() > 0.01 * peak)) {
        (Some(a), Some(b)) => speech[a..=b].to_vec(),
        _ => speech,
    }
}

/// Per-leg audio and reference turns.
fn make_call(voices: (&str, &str), dir: &Path) -> ([Vec<f32>; 2], Turns) {
    let mut legs = [Vec::new(), Vec::new()];
    let mut turns = Vec::new();
    for (i, (who, text, pause)) in LINES.iter().enumerate() {
        let voice = if *who == 0 { voices.0 } else { voices.1 };
        let speech = trimmed(speak(voice, text, dir, i));
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

/// A mono call of `voices.len()` voices taking the script's lines in turn, and
/// its reference turns (edges exact to the sample, as in [`make_call`]).
fn mono_call(voices: &[&str], dir: &Path, speed_tag: usize) -> (Vec<f32>, Turns) {
    let mut out = Vec::new();
    let mut turns = Vec::new();
    for (i, (who, text, pause)) in LINES.iter().enumerate() {
        let k = (i + who) % voices.len();
        let speech = trimmed(speak(voices[k], text, dir, 1000 + speed_tag * 100 + i));
        let start = out.len() as f64 / 16000.0;
        out.extend_from_slice(&speech);
        turns.push((start, out.len() as f64 / 16000.0, format!("spk{k}")));
        out.extend(std::iter::repeat_n(0.0, (pause * 16000.0) as usize));
    }
    (out, turns)
}

/// The voices of the speaker-count runs. `espeak`: espeak-ng's formant voices
/// (one synthetic source, varied). `mbrola`: MBROLA diphone voices, each cut
/// from one real person's recordings (Debian non-free: mbrola-us1, -us2, -us3,
/// -en1, -de1, -de2, -fr1, -fr4, -nl2, -af1; the last six speak English with
/// their own accent), the nearest to real voices the registries hold.
fn voice_set() -> (Vec<&'static str>, Vec<&'static str>) {
    match std::env::var("CALLSCRIBE_BENCH_VOICES").as_deref() {
        Ok("mbrola") => (
            vec!["mb-us1", "mb-us2", "mb-us3", "mb-en1", "mb-de1-en", "mb-de2-en", "mb-fr1-en", "mb-fr4-en"],
            vec!["mb-nl2-en", "mb-af1-en"],
        ),
        _ => (
            vec!["en-us+m1", "en-us+m2", "en-us+m4", "en-us+m7", "en-us+f2", "en-us+f3", "en-us+f4"],
            vec!["en-us", "en-gb+m3"],
        ),
    }
}

/// 8 kHz G.711 µ-law and back to 16 kHz: what a PBX recording holds.
fn telephone(x: &[f32]) -> Vec<f32> {
    let narrow = resample(&[x.to_vec()], 16000, 8000).unwrap().remove(0);
    let mu = 255.0f32;
    let law: Vec<f32> = narrow
        .iter()
        .map(|&v| {
            let v = v.clamp(-1.0, 1.0);
            let y = v.signum() * (1.0 + mu * v.abs()).ln() / (1.0 + mu).ln();
            let q = (y * 127.0).round() / 127.0;
            q.signum() * ((1.0 + mu).powf(q.abs()) - 1.0) / mu
        })
        .collect();
    resample(&[law], 8000, 16000).unwrap().remove(0)
}

/// Words every 0.25 s inside each reference turn (an ideal recogniser's layout,
/// so that only the speaker decision is scored).
fn ideal_words(turns: &Turns) -> Vec<callscribe::asr::Segment> {
    turns
        .iter()
        .map(|(a, b, _)| {
            let n = (((b - a) / 0.25).ceil() as usize).max(1);
            let len = (b - a) / n as f64;
            let words = (0..n)
                .map(|i| callscribe::asr::Word {
                    word: " w".into(),
                    start: a + i as f64 * len,
                    end: a + (i + 1) as f64 * len,
                    probability: 0.9,
                })
                .collect();
            callscribe::asr::Segment { start: *a, end: *b, words, text: "w".into(), ..Default::default() }
        })
        .collect()
}

/// Speaker-count accuracy and mono DER of the clustering (no whisper needed):
/// one-voice monologues (voicemail, IVR), two-voice and three-voice calls over
/// the telephone band, each with the hand-made features and with the voice
/// encoder (models/voice-encoder.safetensors), with the separation of the two
/// closest clusters printed for the thresholds' choice.
fn count_speakers(dir: &Path) {
    use callscribe::diarize::{
        by_clustering, by_segmentation, segment::Segmenter, ENCODER_THRESHOLDS, FEATURE_THRESHOLDS,
    };
    let (distinct, extra) = voice_set();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let encoder = VoiceEncoder::load(&root.join("models/voice-encoder.safetensors"))
        .map_err(|e| eprintln!("no voice encoder ({e}): features only"))
        .ok()
        .map(Arc::new);
    let embedder = encoder.as_ref().map(embedder);
    let segmenter = Segmenter::load(&root.join("models/segmentation.safetensors"))
        .map_err(|e| eprintln!("no segmentation model ({e})"))
        .ok();
    let mut sets: Vec<(usize, Vec<&str>)> = Vec::new();
    for v in distinct.iter().chain(&extra) {
        sets.push((1, vec![*v]));
    }
    for (i, a) in distinct.iter().enumerate() {
        for b in &distinct[i + 1..] {
            sets.push((2, vec![*a, *b]));
        }
    }
    for k in 0..distinct.len() {
        sets.push((3, vec![distinct[k], distinct[(k + 2) % distinct.len()], distinct[(k + 4) % distinct.len()]]));
    }
    println!(
        "\nspeaker count and mono DER (8 kHz µ-law, speakers.max = 3, words placed ideally): features \
         (thresholds {:?}), voice encoder ({:?}) and segmentation + encoder (link threshold {}); \
         distance of the two closest clusters for k = 2, 3 (segmentation: where the merging stopped)\n",
        FEATURE_THRESHOLDS,
        ENCODER_THRESHOLDS,
        embedder.as_deref().map_or(0.0, link_threshold)
    );
    println!(
        "| voices | true | features: found | sep k=2 | k=3 | DER | encoder: found | sep k=2 | k=3 | DER | \
         segmentation: found | stopped at | DER |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    const METHODS: [&str; 3] = ["features", "encoder", "segmentation"];
    let mut right = [[0usize; 4]; 3];
    let mut total = [0usize; 4];
    let mut der_sum = [[0.0f64; 4]; 3];
    let mut seconds = [0.0f64; 3];
    let mut audio_seconds = 0.0;
    for (n, (truth, voices)) in sets.iter().enumerate() {
        let (x, turns) = mono_call(voices, dir, n);
        let x = telephone(&x);
        audio_seconds += x.len() as f64 / 16000.0;
        total[*truth] += 1;
        let mut cells = Vec::new();
        for m in 0..METHODS.len() {
            let mut segs = ideal_words(&turns);
            let t0 = std::time::Instant::now();
            let info = match (m, encoder.as_deref(), segmenter.as_ref(), embedder.as_deref()) {
                (0, _, _, _) => by_clustering(&x, 16000, &mut segs, 1, 3, None),
                (1, Some(enc), _, _) => by_clustering(&x, 16000, &mut segs, 1, 3, Some(enc)),
                (2, _, Some(seg), Some(emb)) => by_segmentation(&x, &mut segs, 1, 3, seg, emb, link_threshold(emb)),
                _ => {
                    cells.push(if m == 2 { "— | — | —" } else { "— | — | — | —" }.to_string());
                    continue;
                }
            };
            seconds[m] += t0.elapsed().as_secs_f64();
            let hyp: Turns = segs.iter().map(|s| (s.start, s.end, s.speaker.clone().unwrap_or_default())).collect();
            let d = der::der(&turns, &hyp);
            der_sum[m][*truth] += d;
            right[m][*truth] += usize::from(info.speakers == *truth);
            let sep = |k: usize| info.separations.get(k).map_or("—".to_string(), |s| format!("{s:.2}"));
            cells.push(if m == 2 {
                format!("{} | {} | {:.1} %", info.speakers, sep(0), d * 100.0)
            } else {
                format!("{} | {} | {} | {:.1} %", info.speakers, sep(0), sep(1), d * 100.0)
            });
        }
        println!("| {} | {truth} | {} |", voices.join(" / "), cells.join(" | "));
    }
    for (m, name) in METHODS.iter().enumerate() {
        for k in 1..=3 {
            println!(
                "{name}: {k} voice(s) counted right in {}/{}, mean DER {:.1} %",
                right[m][k],
                total[k],
                der_sum[m][k] / total[k].max(1) as f64 * 100.0
            );
        }
        println!("{name}: {:.2} s for {:.0} s of audio", seconds[m], audio_seconds);
    }
}

/// What describes the segmentation path's window speakers, as in the worker:
/// CAM++ (`models/speaker-embedding.safetensors`) when it is there, else the
/// voice encoder; `CALLSCRIBE_BENCH_EMBEDDING=resemblyzer` picks the voice
/// encoder for comparison.
fn embedder(encoder: &Arc<VoiceEncoder>) -> Arc<dyn Embedder> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/speaker-embedding.safetensors");
    match std::env::var("CALLSCRIBE_BENCH_EMBEDDING").as_deref() {
        Ok("resemblyzer") => encoder.clone(),
        _ => match callscribe::diarize::campplus::CamPlus::load(&path) {
            Ok(net) => Arc::new(net),
            Err(e) => {
                eprintln!("no CAM++ ({e}): the voice encoder describes the window speakers");
                encoder.clone()
            }
        },
    }
}

/// The segmentation path's link threshold: `CALLSCRIBE_BENCH_LINK` (to choose
/// it), else the embedder's own, as in the worker.
fn link_threshold(embedder: &dyn Embedder) -> f64 {
    std::env::var("CALLSCRIBE_BENCH_LINK").ok().and_then(|v| v.parse().ok()).unwrap_or(embedder.link_threshold())
}

/// Reference turns per recording from RTTM files.
fn read_rttm(dir: &Path) -> std::collections::BTreeMap<String, Turns> {
    let mut out: std::collections::BTreeMap<String, Turns> = Default::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (CALLSCRIBE_FETCH_REAL_SPEECH=1 scripts/fetch-models.sh)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rttm"))
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() < 8 || w[0] != "SPEAKER" {
                continue;
            }
            let (start, dur): (f64, f64) = (w[3].parse().unwrap(), w[4].parse().unwrap());
            out.entry(w[1].to_string()).or_default().push((start, start + dur, w[7].to_string()));
        }
    }
    out
}

/// Seconds of reference speech (each speaker's time counted) and the share of it
/// no single-speaker labelling can get right: every speaker past the first in
/// overlapped frames.
fn speech_and_overlap(turns: &Turns) -> (f64, f64) {
    let end = turns.iter().map(|t| t.1).fold(0.0, f64::max);
    let mut count = vec![0u32; (end * 100.0).ceil() as usize + 1];
    for (a, b, _) in turns {
        for c in &mut count[(a * 100.0).round() as usize..(b * 100.0).round() as usize] {
            *c += 1;
        }
    }
    let total: u32 = count.iter().sum();
    let extra: u32 = count.iter().map(|c| c.saturating_sub(1)).sum();
    (total as f64 / 100.0, extra as f64 / total.max(1) as f64)
}

/// Mono diarization on real recorded conversation (`CALLSCRIBE_BENCH_REAL=1`):
/// the recordings and hand-made RTTM labels of `models/real-speech` (pyannote.audio's
/// sample and AMI meeting excerpts, fetched by `CALLSCRIBE_FETCH_REAL_SPEECH=1
/// scripts/fetch-models.sh`), taken through the telephone band (8 kHz µ-law), each
/// transcribed once by whisper and then labelled with the default speaker range
/// (1–2), a wider one (1–4) and the exact count as a hint, two ways: voice pieces
/// cut at pauses and clustered by the voice encoder, and the segmentation network
/// linked by the encoder ([`callscribe::diarize::by_segmentation`], the worker's
/// default when both models are present); the hand-made features for comparison.
/// DER without a collar, overlap included; the "ideal words" columns place words
/// evenly inside the reference turns (the speaker decision alone). Means are given
/// per speaker count and split into the AMI training excerpts (trn00–09, on which
/// the segmentation path's thresholds were chosen) and the rest. Recordings with
/// under 10 s of speech are left out.
fn real_speech(engine: &WhisperEngine) {
    use callscribe::diarize::{by_clustering, by_segmentation, segment::Segmenter};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("models/real-speech");
    let encoder = Arc::new(VoiceEncoder::load(&root.join("models/voice-encoder.safetensors")).expect("voice encoder"));
    let embedder = embedder(&encoder);
    let threshold = link_threshold(embedder.as_ref());
    let segmenter = Segmenter::load(&root.join("models/segmentation.safetensors")).expect("segmentation model");
    let abort = AtomicBool::new(false);
    println!(
        "\nreal recorded conversation, mono, {}, model {}: DER without a collar (overlap counted); \
         found = speakers found; pieces = voice pieces cut at pauses (encoder), segmentation = \
         segmentation network + {} (link threshold {threshold})\n",
        if std::env::var("CALLSCRIBE_BENCH_WIDEBAND").is_ok() { "16 kHz as recorded" } else { "8 kHz µ-law" },
        engine.model_name(),
        if std::env::var("CALLSCRIBE_BENCH_EMBEDDING").as_deref() == Ok("resemblyzer") {
            "voice encoder"
        } else {
            "CAM++"
        },
    );
    println!(
        "| recording | speakers | speech s | overlap | features 1–2 | pieces 1–2 | pieces 1–4 | pieces exact | \
         pieces exact, ideal words | segmentation 1–2 | segmentation 1–4 | segmentation exact | same, 0.25 s collar | \
         segmentation exact, ideal words | segmentation 1–2, its own turns |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // Per recording: DER of the eleven columns after the overlap.
    let mut by_count: std::collections::BTreeMap<usize, Vec<[f64; 11]>> = Default::default();
    let mut by_split: std::collections::BTreeMap<&str, Vec<[f64; 11]>> = Default::default();
    let mut counted_right = [[0usize; 2]; 2];
    let mut seconds = 0.0;
    let mut spent = [0.0f64; 2];
    for (uri, reference) in read_rttm(&dir) {
        let wav = dir.join(format!("{uri}.wav"));
        let (speech, overlap) = speech_and_overlap(&reference);
        let only = std::env::var("CALLSCRIBE_BENCH_ONLY").ok();
        if !wav.exists() || speech < 10.0 || only.is_some_and(|o| !o.split(',').any(|x| x == uri)) {
            continue;
        }
        // The worker's own decoder (these WAVs are 16-bit and 32-bit float).
        let audio = callscribe::audio::decode::decode_file(&wav, None, std::time::Duration::from_secs(600)).unwrap();
        let (rate, x) = (audio.sample_rate, audio.channels.into_iter().next().unwrap());
        let x = resample(&[x], rate, 16000).unwrap().remove(0);
        // CALLSCRIBE_BENCH_WIDEBAND=1: the recording as it is (16 kHz), for comparison.
        let x = if std::env::var("CALLSCRIBE_BENCH_WIDEBAND").is_ok() { x } else { telephone(&x) };
        seconds += x.len() as f64 / 16000.0;
        let truth = {
            let mut v: Vec<&str> = reference.iter().map(|t| t.2.as_str()).collect();
            v.sort();
            v.dedup();
            v.len()
        };
        let words = engine.transcribe(&x, 0, &abort).unwrap().segments;
        let ideal = ideal_words(&reference);
        let mut own_turns = f64::NAN;
        let mut run = |segs: &[callscribe::asr::Segment], min: usize, max: usize, method: usize| {
            let mut segs = segs.to_vec();
            let t0 = std::time::Instant::now();
            let info = match method {
                0 => by_clustering(&x, 16000, &mut segs, min, max, None),
                1 => by_clustering(&x, 16000, &mut segs, min, max, Some(encoder.as_ref())),
                _ => by_segmentation(&x, &mut segs, min, max, &segmenter, embedder.as_ref(), threshold),
            };
            if method > 0 {
                spent[method - 1] += t0.elapsed().as_secs_f64();
            }
            if method == 2 && (min, max) == (1, 2) {
                // The diarization's own turns, words aside (what pyannote scores).
                let turns: Turns = info.turns.iter().map(|&(a, b, v)| (a, b, format!("voice{v}"))).collect();
                own_turns = der::der(&reference, &turns);
            }
            let hyp: Turns = segs.iter().map(|s| (s.start, s.end, s.speaker.clone().unwrap_or_default())).collect();
            (info.speakers, der::der(&reference, &hyp), der::der_collar(&reference, &hyp, 0.25))
        };
        let features = run(&words, 1, 2, 0);
        let cells = [
            run(&words, 1, 2, 1),
            run(&words, 1, 4, 1),
            run(&words, truth, truth, 1),
            run(&ideal, truth, truth, 1),
            run(&words, 1, 2, 2),
            run(&words, 1, 4, 2),
            run(&words, truth, truth, 2),
            run(&ideal, truth, truth, 2),
        ];
        for (m, c) in [(0, 0), (1, 4)] {
            counted_right[m][0] += usize::from(cells[c].0 == truth.min(2));
            counted_right[m][1] += usize::from(cells[c + 1].0 == truth.min(4));
        }
        let row = [
            features.1, cells[0].1, cells[1].1, cells[2].1, cells[3].1, cells[4].1, cells[5].1, cells[6].1, cells[6].2,
            cells[7].1, own_turns,
        ];
        by_count.entry(truth).or_default().push(row);
        by_split.entry(if uri.starts_with("trn") { "trn00–09 (tuned on)" } else { "held out" }).or_default().push(row);
        let pct = |d: f64| format!("{:.1} %", d * 100.0);
        let found = |c: (usize, f64, f64)| format!("{}, {}", c.0, pct(c.1));
        println!(
            "| {uri} | {truth} | {speech:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pct(overlap),
            found(features),
            found(cells[0]),
            found(cells[1]),
            pct(cells[2].1),
            pct(cells[3].1),
            found(cells[4]),
            found(cells[5]),
            pct(cells[6].1),
            pct(cells[6].2),
            pct(cells[7].1),
            pct(own_turns)
        );
    }
    let summary = |label: String, rows: &Vec<[f64; 11]>| {
        let mean = |i: usize| rows.iter().map(|r| r[i]).sum::<f64>() / rows.len() as f64 * 100.0;
        println!(
            "{label} ({} recordings): mean DER features 1–2 {:.1} %; pieces 1–2 {:.1} %, 1–4 {:.1} %, exact {:.1} %, \
             ideal words {:.1} %; segmentation 1–2 {:.1} %, 1–4 {:.1} %, exact {:.1} % (collar {:.1} %), ideal words {:.1} %, its own turns (1–2) {:.1} %",
            rows.len(),
            mean(0),
            mean(1),
            mean(2),
            mean(3),
            mean(4),
            mean(5),
            mean(6),
            mean(7),
            mean(8),
            mean(9),
            mean(10)
        );
    };
    for (k, rows) in &by_count {
        summary(format!("{k} speakers"), rows);
    }
    for (split, rows) in &by_split {
        summary(split.to_string(), rows);
    }
    let n: usize = by_count.values().map(Vec::len).sum();
    println!(
        "speaker count right (capped at the range's max): pieces 1–2 {}/{n}, 1–4 {}/{n}; segmentation 1–2 {}/{n}, \
         1–4 {}/{n}; {seconds:.0} s of audio; speaker time (5 runs each) pieces {:.1} s, segmentation {:.1} s",
        counted_right[0][0], counted_right[0][1], counted_right[1][0], counted_right[1][1], spent[0], spent[1]
    );
}

/// Neural voice activity against the energy VAD (`CALLSCRIBE_BENCH_VAD=1`): on
/// each real recording of `models/real-speech` through the telephone band, clean,
/// with white noise 10 dB under the speech, and with quiet music (a plucked
/// arpeggio 6 dB under the speech) throughout: the share of reference speech
/// each VAD misses and the share of non-speech it lets through, on 10 ms frames.
/// The energy VAD is [`callscribe::audio::vad::speech_regions`] as whisper's
/// windows use it (gaps under 0.5 s closed); the neural one is the segmentation
/// network ([`callscribe::diarize::speech_by_segmentation`]) with the same
/// padding and merging; the hybrid is the energy VAD's regions less every
/// stretch of 2 s or more in which the network hears nobody.
fn vad_bench() {
    use callscribe::audio::vad::{speech_regions, Region};
    use callscribe::diarize::{segment::Segmenter, speech_by_segmentation};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("models/real-speech");
    let segmenter = Segmenter::load(&root.join("models/segmentation.safetensors")).expect("segmentation model");
    let rms = |x: &[f32]| (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    // Deterministic noise (xorshift) and a plucked C-major arpeggio, 4 notes a second.
    let noise = |n: usize| {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect::<Vec<f32>>()
    };
    let music = |n: usize| {
        let notes = [261.63, 329.63, 392.0, 523.25];
        (0..n)
            .map(|i| {
                let t = i as f64 / 16000.0;
                let (k, into) = ((t * 4.0) as usize, (t * 4.0).fract() / 4.0);
                let f = notes[k % notes.len()];
                ((std::f64::consts::TAU * f * t).sin() * (-into * 8.0).exp()) as f32
            })
            .collect::<Vec<f32>>()
    };
    println!(
        "\nvoice activity on real recorded conversation, 8 kHz µ-law: missed = reference speech \
         outside the regions, false alarm = non-speech inside them (10 ms frames)\n"
    );
    println!("| recording | condition | speech s | non-speech s | energy: missed | energy: false alarm | network: missed | network: false alarm | hybrid: missed | hybrid: false alarm |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut sums: std::collections::BTreeMap<&str, [f64; 8]> = Default::default();
    for (uri, reference) in read_rttm(&dir) {
        let wav = dir.join(format!("{uri}.wav"));
        if !wav.exists() {
            continue;
        }
        let audio = callscribe::audio::decode::decode_file(&wav, None, std::time::Duration::from_secs(600)).unwrap();
        let (rate, x) = (audio.sample_rate, audio.channels.into_iter().next().unwrap());
        let x = resample(&[x], rate, 16000).unwrap().remove(0);
        let frames = x.len() / 160;
        let mut truth = vec![false; frames];
        for (a, b, _) in &reference {
            for t in &mut truth[((a * 100.0).round() as usize).min(frames)..((b * 100.0).round() as usize).min(frames)]
            {
                *t = true;
            }
        }
        let speech = truth.iter().filter(|&&t| t).count();
        let silence = frames - speech;
        // The speech's level: over the reference's speech frames.
        let level = rms(&truth
            .iter()
            .enumerate()
            .filter(|(_, &t)| t)
            .flat_map(|(f, _)| x[f * 160..(f + 1) * 160].iter().copied())
            .collect::<Vec<f32>>());
        for (condition, extra, db) in [
            ("clean", None, 0.0),
            ("white noise, 10 dB SNR", Some(noise(x.len())), 10.0),
            ("music, 6 dB under", Some(music(x.len())), 6.0),
        ] {
            let mixed: Vec<f32> = match &extra {
                None => x.clone(),
                Some(e) => {
                    let gain = (level / rms(e).max(1e-9) * 10f64.powf(-db / 20.0)) as f32;
                    x.iter().zip(e).map(|(a, b)| a + gain * b).collect()
                }
            };
            let line = telephone(&mixed);
            let score = |regions: &[Region]| {
                let mut on = vec![false; frames];
                for r in regions {
                    for o in &mut on[((r.start * 100.0).round() as usize).min(frames)
                        ..((r.end * 100.0).round() as usize).min(frames)]
                    {
                        *o = true;
                    }
                }
                let missed = truth.iter().zip(&on).filter(|(&t, &o)| t && !o).count();
                let alarm = truth.iter().zip(&on).filter(|(&t, &o)| !t && o).count();
                (missed as f64, alarm as f64)
            };
            let energy_regions = speech_regions(&line, 16000, 0.5);
            let network_regions = speech_by_segmentation(&line, &segmenter, 0.5);
            let energy = score(&energy_regions);
            let network = score(&network_regions);
            // Hybrid: the energy regions less every stretch of 2 s or more in
            // which the network hears nobody.
            let total = line.len() as f64 / 16000.0;
            let mut quiet = Vec::new();
            let mut from = 0.0;
            for r in network_regions.iter().chain([&Region { start: total, end: total }]) {
                if r.start - from >= 2.0 {
                    quiet.push((from, r.start));
                }
                from = r.end;
            }
            let hybrid_regions: Vec<Region> = energy_regions
                .iter()
                .flat_map(|r| {
                    let mut pieces = vec![*r];
                    for &(a, b) in &quiet {
                        pieces = pieces
                            .into_iter()
                            .flat_map(|p| {
                                [
                                    Region { start: p.start, end: p.end.min(a) },
                                    Region { start: p.start.max(b), end: p.end },
                                ]
                            })
                            .filter(|p| p.end > p.start)
                            .collect();
                    }
                    pieces
                })
                .collect();
            let hybrid = score(&hybrid_regions);
            // Frames: energy missed, energy false alarm, network missed, network
            // false alarm, speech, non-speech, hybrid missed, hybrid false alarm.
            let sum = sums.entry(condition).or_default();
            let counts = [energy.0, energy.1, network.0, network.1, speech as f64, silence as f64, hybrid.0, hybrid.1];
            for (total, v) in sum.iter_mut().zip(counts) {
                *total += v;
            }
            let rate = |c: (f64, f64)| (c.0 / speech.max(1) as f64, c.1 / silence.max(1) as f64);
            let (energy, network, hybrid) = (rate(energy), rate(network), rate(hybrid));
            let pct = |v: f64| format!("{:.1} %", v * 100.0);
            println!(
                "| {uri} | {condition} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
                speech as f64 / 100.0,
                silence as f64 / 100.0,
                pct(energy.0),
                pct(energy.1),
                pct(network.0),
                pct(network.1),
                pct(hybrid.0),
                pct(hybrid.1)
            );
        }
    }
    for (condition, s) in &sums {
        println!(
            "{condition}: energy missed {:.1} %, false alarm {:.1} %; network missed {:.1} %, false alarm {:.1} %; \
             hybrid missed {:.1} %, false alarm {:.1} % ({:.0} s of speech, {:.0} s of non-speech)",
            s[0] / s[4] * 100.0,
            s[1] / s[5] * 100.0,
            s[2] / s[4] * 100.0,
            s[3] / s[5] * 100.0,
            s[6] / s[4] * 100.0,
            s[7] / s[5] * 100.0,
            s[4] / 100.0,
            s[5] / 100.0
        );
    }
}

fn main() {
    if std::env::var("CALLSCRIBE_BENCH_VAD").is_ok() {
        vad_bench();
        return;
    }
    if std::env::var("CALLSCRIBE_BENCH_REAL").is_ok() {
        let model = std::env::var("CALLSCRIBE_BENCH_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ggml-tiny.en.bin"));
        real_speech(&WhisperEngine::load(AsrConfig { model, threads: 2, ..Default::default() }).expect("model"));
        return;
    }
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
    let encoder = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/voice-encoder.safetensors");
    let speakers = |m, voices: bool| SpeakersConfig {
        channel_labels: vec!["spk0".into(), "spk1".into()],
        mono_method: m,
        voice_model: voices.then(|| encoder.clone()).filter(|p| p.is_file()),
        ..Default::default()
    };

    println!(
        "diarization bench: {} two-speaker calls, {} turns each, model {}\n",
        call_voices().len(),
        LINES.len(),
        engine.model_name()
    );
    println!(
        "| call | voices | gaps DER | cluster DER | cluster + encoder DER | stereo DER | gaps DER (0.25 s collar) | \
         cluster (collar) | cluster + encoder (collar) | stereo (collar) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut sums = [0.0f64; 8];
    let only: Option<usize> = std::env::var("CS_ONLY_CALL").ok().and_then(|v| v.parse().ok());
    for (k, v) in call_voices().iter().enumerate() {
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
        for (label, audio, method, voices) in [
            ("gaps", &mono_audio, Method::Gaps, false),
            ("cluster", &mono_audio, Method::Cluster, false),
            ("encoder", &mono_audio, Method::Cluster, true),
            ("stereo", &stereo_audio, Method::Cluster, false),
        ] {
            let (t, _) = callscribe::pipeline::recognise(&engine, audio, &speakers(method, voices), &abort).unwrap();
            let hyp: Turns =
                t.segments.iter().map(|s| (s.start, s.end, s.speaker.clone().unwrap_or_default())).collect();
            std::fs::write(rttm_dir.join(format!("{name}.{label}.rttm")), rttm(&name, &hyp)).unwrap();
            row.push(der::der(&reference, &hyp));
            row_collar.push(der::der_collar(&reference, &hyp, 0.25));
        }
        for (i, x) in row.iter().chain(&row_collar).enumerate() {
            sums[i] += x;
        }
        let cells: Vec<String> = row.iter().chain(&row_collar).map(|x| format!("{:.1} %", x * 100.0)).collect();
        println!("| {k} | {} / {} | {} |", v.0, v.1, cells.join(" | "));
    }
    let n = call_voices().len() as f64;
    let means: Vec<String> = sums.iter().map(|x| format!("{:.1} %", x / n * 100.0)).collect();
    println!("| mean | | {} |", means.join(" | "));
    println!("\nRTTM files for scripts/der_crosscheck.py: {}", rttm_dir.display());
    count_speakers(dir.path());
}
