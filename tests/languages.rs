//! Language settings through the real binary: codes whisper does not know are
//! usage errors (exit 2) naming the key, from the flags and from the
//! configuration alike; an English-only model asked for another language refuses
//! with one sentence; restricted detection on espeak-ng Hindi with the
//! multilingual base model stays among the candidates, in Devanagari.

use std::path::{Path, PathBuf};
use std::process::Command;

fn models_dir() -> PathBuf {
    std::env::var("CALLSCRIBE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

fn callscribe(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callscribe"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("CALLSCRIBE_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hindi_call(dir: &Path) -> PathBuf {
    let raw = dir.join("hi.wav");
    let st = Command::new("espeak-ng")
        .args(["-v", "hi", "-s", "140", "-w"])
        .arg(&raw)
        .arg("नमस्ते, मैं आपके लोन खाते के बारे में बात कर रहा हूँ। क्या आप शुक्रवार तक भुगतान कर सकते हैं? धन्यवाद।")
        .status()
        .expect("espeak-ng is needed (.ci/run installs it)");
    assert!(st.success());
    raw
}

#[test]
fn unknown_codes_are_usage_errors_and_english_only_models_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let wav = hindi_call(dir.path());
    let wav = wav.to_str().unwrap();
    let (code, _, err) = callscribe(&["transcribe", "--language", "klingon", wav], &[], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("asr.language") && err.contains("klingon"), "{err}");
    let (code, _, err) = callscribe(&["transcribe", "--languages", "hi,xx", wav], &[], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("asr.languages") && err.contains("xx"), "{err}");
    // The same from the configuration (here its environment layer).
    let (code, _, err) = callscribe(&["transcribe", wav], &[("CALLSCRIBE_ASR__LANGUAGE", "xx")], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("asr.language"), "{err}");
    // A fixed language outside the candidates.
    let (code, _, err) = callscribe(&["transcribe", "--language", "ta", "--languages", "hi,en", wav], &[], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not among asr.languages"), "{err}");

    let tiny = models_dir().join("ggml-tiny.en.bin");
    assert!(tiny.exists(), "{} missing: run scripts/fetch-models.sh", tiny.display());
    let (code, _, err) =
        callscribe(&["transcribe", "--model", tiny.to_str().unwrap(), "--language", "hi", wav], &[], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("English-only") && err.contains("`hi`") && err.lines().count() <= 2, "{err}");
}

#[test]
fn restricted_detection_picks_a_candidate_and_hindi_is_devanagari() {
    let dir = tempfile::tempdir().unwrap();
    let wav = hindi_call(dir.path());
    let base = models_dir().join("ggml-base.bin");
    assert!(base.exists(), "{} missing: run scripts/fetch-models.sh", base.display());
    let base = base.to_str().unwrap();
    let mut args = vec!["transcribe", "--format", "json", "--model", base, "--languages", "hi,en", "--threads", "2"];
    // No file given: clap refuses; then with the file.
    let (code, out, err) = callscribe(&args, &[], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    args.push(wav.to_str().unwrap());
    let (code, out, err) = callscribe(&args, &[], dir.path());
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lang = j["language"].as_str().unwrap();
    assert!(lang == "hi" || lang == "en", "{lang}");
    let p = j["language_probability"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&p), "probability among two candidates: {p}");
    let text = j["text"].as_str().unwrap();
    // A 9 s call: its window is encoded at its own length (asr.fit_audio_ctx),
    // and redone at 30 s if that text is doubtful (with base it came out empty).
    let retries = j["full_context_retries"].as_u64().expect("full_context_retries");
    eprintln!("{lang} {p:.2}, {retries} window(s) redone at 30 s: {text}");
    if lang == "hi" {
        let deva = text.chars().filter(|c| ('\u{0900}'..='\u{097F}').contains(c)).count();
        let other = text.chars().filter(|c| c.is_alphabetic() && !('\u{0900}'..='\u{097F}').contains(c)).count();
        assert!(deva > 4 * other && !text.contains('\u{FFFD}'), "not Devanagari: {text}");
    }
}
