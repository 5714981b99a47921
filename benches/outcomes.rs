//! Outcome accuracy of the analysis engines on a labelled set of generated calls
//! (not a test; prints a table for the README).
//!
//!   cargo build --release -p callscribe-llm
//!   scripts/fetch-models.sh models                          # tiny.en, base, SmolLM2
//!   CALLSCRIBE_FETCH_GEMMA=1 scripts/fetch-models.sh models  # gemma-3-270m (optional)
//!   cargo bench --bench outcomes
//!
//! The set: 8 situations (a promise to pay with an amount and a date, paid
//! already, a dispute, a refusal, a wrong number, a callback request, a delivery
//! reschedule, a support escalation), each in English and in Hinglish. Every turn
//! is spoken by espeak-ng (agent and customer in two voices), taken down to 8 kHz
//! as a telephone line would, and transcribed by whisper (`base`, multilingual);
//! the speakers come from the script, so diarization errors do not count here.
//!
//! Per engine: outcome accuracy (a rejected answer counts as wrong), amount and
//! date extraction on the promise calls (`outcome_details` holds the figure and
//! the day), how many answers validation rejected, evidence validity (findings
//! whose quote was in the segments they cite, of all findings the accepted
//! answers gave), and seconds per call. Engines: `heuristic`, SmolLM2-135M and
//! gemma-3-270m in `callscribe-llm` (2 threads, greedy, `fast` grammar), and an
//! OpenAI-compatible server when `CALLSCRIBE_BENCH_HTTP_URL` (…/v1) and
//! `CALLSCRIBE_BENCH_HTTP_MODEL` are set — llama.cpp's own `llama-server`, built
//! by `benches/llama_server.sh`, or `python -m llama_cpp.server --model
//! MODEL.gguf` from PyPI's `llama-cpp-python[server]`: the harness for a 1–3 B
//! model. `CALLSCRIBE_BENCH_ENGINES=heuristic,smollm2,gemma,http` picks
//! engines (default: every one at hand); `CALLSCRIBE_BENCH_SHOW=1` prints the
//! transcripts; `CALLSCRIBE_BENCH_TRANSCRIPTS=FILE.json` keeps them between runs
//! (written on the first, read after), so engines run apart score the same text.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callscribe::analyze::http::{HttpConfig, OpenAiHttp};
use callscribe::analyze::llm::{LlmConfig, LlmProcess};
use callscribe::analyze::{AnalyzeError, Analyzer, CallContext, Engine, Template};
use callscribe::asr::{AsrConfig, Segment, Transcript, WhisperEngine};
use callscribe::audio::resample::resample;

/// One labelled call: the template, the expected outcome, the amount and day a
/// promise names, and the turns (agent first).
struct Call {
    name: &'static str,
    template: &'static str,
    outcome: &'static str,
    amount: Option<&'static str>,
    date: Option<&'static str>,
    turns: &'static [&'static str],
}

const fn call(
    name: &'static str,
    template: &'static str,
    outcome: &'static str,
    turns: &'static [&'static str],
) -> Call {
    Call { name, template, outcome, amount: None, date: None, turns }
}

const CALLS: &[Call] = &[
    Call {
        name: "promise (en)",
        template: "loan_collection",
        outcome: "promise_to_pay",
        amount: Some("5000"),
        date: Some("friday"),
        turns: &[
            "Good morning, this is Priya from Apex Finance about your personal loan. Your instalment of five thousand rupees is overdue.",
            "Yes, I know. My salary was late this month.",
            "I understand. When can you make the payment?",
            "I will pay the five thousand rupees on Friday through the app.",
            "Thank you, I have noted your promise to pay five thousand rupees on Friday.",
        ],
    },
    Call {
        name: "promise (hinglish)",
        template: "loan_collection",
        outcome: "promise_to_pay",
        amount: Some("5000"),
        date: Some("friday"),
        turns: &[
            "Namaste ji, main Apex Finance se Priya bol rahi hoon. Aapki paanch hazaar ki EMI due hai.",
            "Haan ji, salary late aayi is mahine.",
            "Koi baat nahi. Aap payment kab tak kar denge?",
            "Main Friday ko five thousand rupees pay kar dunga, pakka.",
            "Theek hai, Friday ko five thousand rupees, maine note kar liya. Thank you.",
        ],
    },
    call(
        "paid already (en)",
        "loan_collection",
        "paid_already",
        &[
            "Hello, this is Ravi from Apex Finance calling about the overdue instalment on your loan.",
            "I already paid it last Tuesday. I have the receipt from the bank.",
            "Thank you. Can you tell me the reference on the receipt?",
            "Yes, the payment is done, it went through online banking on Tuesday.",
            "I will check it with our accounts team and update your account.",
        ],
    ),
    call(
        "paid already (hinglish)",
        "loan_collection",
        "paid_already",
        &[
            "Namaste, main Apex Finance se Ravi bol raha hoon, aapki EMI ke baare mein.",
            "Maine already pay kar diya hai, Tuesday ko. Receipt bhi hai mere paas.",
            "Achha, aapne kis tarah payment kiya tha?",
            "Online banking se, payment ho chuka hai, aap check kar lijiye.",
            "Theek hai, main accounts team se check karke update kar dunga.",
        ],
    ),
    call(
        "dispute (en)",
        "loan_collection",
        "dispute",
        &[
            "Good afternoon, this is Asha from City Loans about the loan in your name.",
            "That is not my loan. I never took any loan from City Loans.",
            "Our records show a loan opened in March with your phone number.",
            "I dispute this. Someone has used my details. I want to raise a complaint.",
            "I understand, I will raise a dispute and our team will investigate.",
        ],
    ),
    call(
        "dispute (hinglish)",
        "loan_collection",
        "dispute",
        &[
            "Namaste, main City Loans se Asha bol rahi hoon, aapke loan ke baare mein.",
            "Yeh mera loan nahi hai. Maine kabhi City Loans se loan liya hi nahi.",
            "Hamare record mein aapka number hai, March mein loan khula tha.",
            "Main is par dispute raise karna chahta hoon, kisi ne mere details use kiye hain.",
            "Theek hai, main dispute raise kar deti hoon, team investigate karegi.",
        ],
    ),
    call(
        "refusal (en)",
        "loan_collection",
        "refusal",
        &[
            "Hello, this is Priya from Apex Finance. Your instalment is two months overdue.",
            "I will not pay. The interest you charge is unfair.",
            "Not paying will add late fees to your account.",
            "I don't care. I refuse to pay anything more. Do not call me again.",
            "I have noted that you refuse to pay. Goodbye.",
        ],
    ),
    call(
        "refusal (hinglish)",
        "loan_collection",
        "refusal",
        &[
            "Namaste, main Apex Finance se Priya. Aapki EMI do mahine se due hai.",
            "Main pay nahi karunga. Aapka interest bahut zyada hai.",
            "Payment na karne par late fee lagegi.",
            "Mujhe farak nahi padta. I will not pay. Dobara call mat karna.",
            "Theek hai, maine note kar liya ki aap pay nahi karenge.",
        ],
    ),
    call(
        "wrong number (en)",
        "loan_collection",
        "wrong_number",
        &[
            "Good morning, may I speak to Mister Rajesh Kumar about his loan?",
            "Sorry, there is no Rajesh here. You have the wrong number.",
            "Is this not the number ending in four four one seven?",
            "No, this is a wrong number. I have had this number for years.",
            "My apologies, I will update our records. Goodbye.",
        ],
    ),
    call(
        "wrong number (hinglish)",
        "loan_collection",
        "wrong_number",
        &[
            "Namaste, kya main Rajesh Kumar ji se baat kar sakti hoon?",
            "Yahan koi Rajesh nahi hai. Wrong number hai.",
            "Kya yeh number char char ek saat par khatam nahi hota?",
            "Nahi ji, yeh wrong number hai, galat jagah call kiya hai aapne.",
            "Sorry ji, main record update kar deti hoon.",
        ],
    ),
    call(
        "callback (en)",
        "loan_collection",
        "callback_requested",
        &[
            "Hello, this is Ravi from Apex Finance about your loan account.",
            "I am driving right now, I cannot talk.",
            "When would be a good time to call you?",
            "Please call me back this evening after six.",
            "Sure, I will call you back this evening after six.",
        ],
    ),
    call(
        "callback (hinglish)",
        "loan_collection",
        "callback_requested",
        &[
            "Namaste, Apex Finance se Ravi bol raha hoon, aapke loan ke baare mein.",
            "Abhi main meeting mein hoon, baat nahi kar sakta.",
            "Aapko kab call karun?",
            "Shaam ko chhe baje ke baad call back kijiye please.",
            "Theek hai, main shaam ko call back karunga.",
        ],
    ),
    call(
        "reschedule (en)",
        "delivery",
        "reschedule",
        &[
            "Hello, this is Sam from Swift Couriers. We have a parcel for you today.",
            "I am not at home today. Can you deliver it on Saturday instead?",
            "Yes, we can reschedule the delivery. Morning or afternoon?",
            "Saturday morning please, same address.",
            "Done, your delivery is rescheduled to Saturday morning.",
        ],
    ),
    call(
        "reschedule (hinglish)",
        "delivery",
        "reschedule",
        &[
            "Namaste, Swift Couriers se Sam. Aapka parcel aaj deliver hona hai.",
            "Aaj main ghar pe nahi hoon. Saturday ko deliver kar sakte ho?",
            "Haan ji, delivery reschedule kar dete hain. Subah ya shaam?",
            "Saturday subah, wahi address.",
            "Ho gaya, aapki delivery Saturday subah ke liye reschedule ho gayi hai.",
        ],
    ),
    call(
        "escalation (en)",
        "support",
        "escalated",
        &[
            "Thank you for calling Nova Broadband support, this is Tom.",
            "My internet has been down for five days and nobody has fixed it.",
            "I am sorry. I can see two engineer visits were missed.",
            "This is unacceptable. I want to speak to a manager now.",
            "I understand. I am escalating your case to my supervisor, who will call you within the hour.",
        ],
    ),
    call(
        "escalation (hinglish)",
        "support",
        "escalated",
        &[
            "Nova Broadband support mein aapka swagat hai, main Tom bol raha hoon.",
            "Mera internet paanch din se band hai, koi fix nahi kar raha.",
            "Sorry sir, do engineer visits miss ho gaye hain.",
            "Yeh bilkul theek nahi hai. Mujhe manager se baat karni hai abhi.",
            "Main aapka case supervisor ko escalate kar raha hoon, woh ek ghante mein call karenge.",
        ],
    ),
];

fn speak(voice: &str, text: &str, dir: &Path, n: usize) -> Vec<f32> {
    let out = dir.join(format!("turn-{n}.wav"));
    let st = Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(&out).arg(text).status();
    assert!(st.is_ok_and(|s| s.success()), "espeak-ng is needed (apt-get install espeak-ng)");
    let mut r = hound::WavReader::open(&out).unwrap();
    let rate = r.spec().sample_rate;
    let x: Vec<f32> = r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect();
    // Down to the telephone's 8 kHz, then up to whisper's 16 kHz.
    let phone = resample(&[x], rate, 8000).unwrap();
    resample(&phone, 8000, 16000).unwrap().remove(0)
}

/// Every turn spoken and transcribed; speakers and times from the script.
fn transcribe(whisper: &WhisperEngine, c: &Call, dir: &Path) -> Transcript {
    let mut segments = Vec::new();
    let mut at = 0.0;
    for (i, line) in c.turns.iter().enumerate() {
        let (voice, who) = if i % 2 == 0 { ("en-gb", "agent") } else { ("en-us+f3", "customer") };
        let audio = speak(voice, line, dir, i);
        let t = whisper.transcribe(&audio, 0, &std::sync::atomic::AtomicBool::new(false)).unwrap();
        let text = t.full_text();
        let secs = audio.len() as f64 / 16000.0;
        segments.push(Segment {
            start: at,
            end: at + secs,
            text: text.trim().to_string(),
            confidence: 0.9,
            speaker: Some(who.into()),
            ..Default::default()
        });
        at += secs + 0.5;
    }
    Transcript { language: "en".into(), language_probability: 1.0, segments, ..Default::default() }
}

#[derive(Default)]
struct Score {
    calls: usize,
    correct: usize,
    rejected: usize,
    promises: usize,
    amounts: usize,
    dates: usize,
    findings: usize,
    valid_findings: usize,
    seconds: f64,
    reasons: Vec<String>,
}

async fn run(name: &str, analyzers: &[(&str, Analyzer)], calls: &[(&Call, Transcript)]) -> (String, Score) {
    let mut s = Score::default();
    for (c, t) in calls {
        let a = &analyzers.iter().find(|(k, _)| *k == c.template).unwrap().1;
        let started = Instant::now();
        let r = a.analyze(t, &CallContext::default()).await;
        s.seconds += started.elapsed().as_secs_f64();
        s.calls += 1;
        if c.amount.is_some() {
            s.promises += 1;
        }
        match r {
            Ok(x) => {
                if x.outcome.as_deref() == Some(c.outcome) {
                    s.correct += 1;
                }
                let detail =
                    |k: &str| x.outcome_details[k].as_str().unwrap_or_default().to_lowercase().replace([',', ' '], "");
                if let Some(amount) = c.amount {
                    if detail("amount").contains(amount) || detail("amount").contains("fivethousand") {
                        s.amounts += 1;
                    }
                }
                if let Some(date) = c.date {
                    if detail("date").contains(date) {
                        s.dates += 1;
                    }
                }
                let kept = x.topics.len()
                    + x.action_items.len()
                    + x.agent_actions.len()
                    + x.compliance_flags.len()
                    + x.score_impacts.len();
                s.valid_findings += kept;
                s.findings += kept + x.dropped_findings as usize;
            }
            Err(AnalyzeError::Invalid(reason)) => {
                s.rejected += 1;
                let short: String = reason.chars().take(70).collect();
                s.reasons.push(format!("{}: {short}", c.name));
            }
            Err(e) => panic!("{name} on {}: {e}", c.name),
        }
    }
    (name.to_string(), s)
}

fn analyzers(engine: impl Fn() -> Engine) -> Vec<(&'static str, Analyzer)> {
    ["loan_collection", "delivery", "support"]
        .into_iter()
        .map(|t| (t, Analyzer::new(engine(), Template::builtin(t).unwrap(), "en-GB", 6000)))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models: PathBuf =
        std::env::var("CALLSCRIBE_TEST_MODELS").map(PathBuf::from).unwrap_or_else(|_| root.join("models"));
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let bin = ["release", "debug"].iter().map(|p| target.join(p).join("callscribe-llm")).find(|b| b.exists());
    let dir = tempfile::tempdir().unwrap();

    let t0 = Instant::now();
    // CALLSCRIBE_BENCH_TRANSCRIPTS=FILE.json keeps the transcripts: read when the
    // file holds this set, written otherwise, so that engines run at different
    // times are scored on the same text.
    let saved = std::env::var("CALLSCRIBE_BENCH_TRANSCRIPTS").ok().map(PathBuf::from);
    let cached: Option<Vec<(String, Transcript)>> = saved
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|v: &Vec<(String, Transcript)>| v.iter().map(|(n, _)| n.as_str()).eq(CALLS.iter().map(|c| c.name)));
    let calls: Vec<(&Call, Transcript)> = match cached {
        Some(v) => {
            println!("{} transcripts read from {}\n", v.len(), saved.as_ref().unwrap().display());
            CALLS.iter().zip(v.into_iter().map(|(_, t)| t)).collect()
        }
        None => {
            let whisper = WhisperEngine::load(AsrConfig {
                model: models.join("ggml-base.bin"),
                threads: 2,
                ..Default::default()
            })
            .expect("models/ggml-base.bin: run scripts/fetch-models.sh");
            let calls: Vec<(&Call, Transcript)> = CALLS
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let d = dir.path().join(i.to_string());
                    std::fs::create_dir_all(&d).unwrap();
                    (c, transcribe(&whisper, c, &d))
                })
                .collect();
            println!(
                "{} calls spoken and transcribed (base, 8 kHz) in {:.0} s\n",
                calls.len(),
                t0.elapsed().as_secs_f64()
            );
            if let Some(p) = &saved {
                let v: Vec<(&str, &Transcript)> = calls.iter().map(|(c, t)| (c.name, t)).collect();
                std::fs::write(p, serde_json::to_vec(&v).unwrap()).unwrap();
            }
            calls
        }
    };
    if std::env::var("CALLSCRIBE_BENCH_SHOW").is_ok() {
        for (c, t) in &calls {
            println!("{}: {}", c.name, t.full_text());
        }
    }

    // CALLSCRIBE_BENCH_ENGINES=heuristic,smollm2,gemma,http (default: all that are at hand).
    let only = std::env::var("CALLSCRIBE_BENCH_ENGINES").unwrap_or_default();
    let wanted = |e: &str| only.is_empty() || only.split(',').any(|x| x.trim() == e);
    let mut rows = Vec::new();
    if wanted("heuristic") {
        rows.push(run("heuristic", &analyzers(|| Engine::Heuristic), &calls).await);
    }
    for (key, label, file, chat_template) in [
        ("smollm2", "SmolLM2-135M Q4_1", "smollm2-135m-instruct.gguf", None),
        ("gemma", "gemma-3-270m Q4_K_M", "gemma-3-270m-q4_k_m.gguf", Some("gemma")),
    ] {
        if !wanted(key) {
            continue;
        }
        let (Some(bin), true) = (&bin, models.join(file).exists()) else {
            println!("({label}: {} or callscribe-llm missing; skipped)", file);
            continue;
        };
        let mut list = Vec::new();
        for t in ["loan_collection", "delivery", "support"] {
            let p = LlmProcess::start(LlmConfig {
                bin: bin.clone(),
                model: models.join(file),
                ctx: 4096,
                threads: 2,
                chat_template: chat_template.map(str::to_string),
                gpu_layers: 0,
                deadline: Duration::from_secs(600),
                load_timeout: Duration::from_secs(120),
                max_tokens: 1280,
                grammar: "fast".into(),
            })
            .await
            .unwrap();
            list.push((t, Analyzer::new(Engine::Llm(p), Template::builtin(t).unwrap(), "en-GB", 6000)));
        }
        rows.push(run(label, &list, &calls).await);
    }
    if let (true, Ok(url), Ok(model)) =
        (wanted("http"), std::env::var("CALLSCRIBE_BENCH_HTTP_URL"), std::env::var("CALLSCRIBE_BENCH_HTTP_MODEL"))
    {
        let engine = || {
            Engine::Http(
                OpenAiHttp::new(HttpConfig {
                    base_url: url.clone(),
                    model: model.clone(),
                    api_key: None,
                    deadline: Duration::from_secs(600),
                    max_tokens: 1280,
                })
                .unwrap(),
            )
        };
        rows.push(run(&format!("openai-http ({model})"), &analyzers(engine), &calls).await);
    }

    println!("| engine | outcome accuracy | amount | date | answers rejected | evidence valid | s/call |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, s) in &rows {
        let evidence = if s.findings == 0 {
            "— (no findings)".to_string()
        } else {
            format!(
                "{}/{} ({:.0} %)",
                s.valid_findings,
                s.findings,
                100.0 * s.valid_findings as f64 / s.findings as f64
            )
        };
        println!(
            "| {name} | {}/{} ({:.0} %) | {}/{} | {}/{} | {}/{} | {evidence} | {:.1} |",
            s.correct,
            s.calls,
            100.0 * s.correct as f64 / s.calls as f64,
            s.amounts,
            s.promises,
            s.dates,
            s.promises,
            s.rejected,
            s.calls,
            s.seconds / s.calls as f64
        );
    }
    for (name, s) in &rows {
        for r in s.reasons.iter().take(4) {
            println!("  {name} rejected {r}");
        }
    }
}
