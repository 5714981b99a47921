//! Analysis-stage bench (not a test): per model and grammar mode, the LLM
//! process's load time, prompt and generation tokens per second, peak memory
//! (VmHWM of the process), time per call, and whether the answer validated.
//!
//!   cargo build --release -p callscribe-llm
//!   CALLSCRIBE_FETCH_GEMMA=1 scripts/fetch-models.sh
//!   cargo bench --bench analysis
//!
//! Grammar modes: `none` (free generation), `full` (the grammar filters the whole
//! vocabulary every step), `fast` (the greedy pick alone is checked; the whole
//! vocabulary only when it is rejected). Same prompt, same greedy decoding.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callscribe::analyze::llm::{LlmConfig, LlmProcess};
use callscribe::analyze::{transcript_lines, validate, Template};
use callscribe::asr::{Segment, Transcript};

const CALL: &[(&str, &str)] = &[
    ("agent", "Good morning, this is Priya from Apex Finance about your loan account ending 4417."),
    ("customer", "Yes, speaking. I know the instalment is late, my salary came late this month."),
    ("agent", "I understand. The amount due is five thousand rupees. When can you pay?"),
    ("customer", "I will pay five thousand rupees on Friday, the twenty third, through the app."),
    ("agent", "Thank you. A late fee of two hundred rupees applies. I will send the payment link."),
    ("customer", "Okay, please send it by message. Thank you."),
    ("agent", "Done. Thank you for your time, have a good day."),
];

fn transcript() -> Transcript {
    let segments = CALL
        .iter()
        .enumerate()
        .map(|(i, (who, text))| Segment {
            start: i as f64 * 5.0,
            end: i as f64 * 5.0 + 4.5,
            text: text.to_string(),
            words: vec![],
            confidence: 0.9,
            no_speech_probability: 0.0,
            speaker: Some(who.to_string()),
            channel: 0,
        })
        .collect();
    Transcript { segments, ..Default::default() }
}

fn vm_hwm_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let bin = target.join("release/callscribe-llm");
    assert!(bin.exists(), "{} missing: cargo build --release -p callscribe-llm", bin.display());
    let models = root.join("models");
    let runs = 3;
    let t = transcript();
    let tpl = Template::builtin("loan_collection").unwrap();
    let speakers = vec!["agent".to_string(), "customer".to_string()];
    let (system, user) = tpl.prompts(&transcript_lines(&t).join("\n"), "British English");
    let schema = tpl.schema(&speakers, t.segments.len());

    println!("analysis bench: {runs} runs of one 7-turn loan-collection call per row, 2 threads, greedy\n");
    println!("| model | grammar | load s | prompt tok/s | gen tok/s | tokens out | s per call | peak RSS MB | valid answers |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (file, template) in [("smollm2-135m-instruct.gguf", None), ("gemma-3-270m-q4_k_m.gguf", Some("gemma"))] {
        let model = models.join(file);
        if !model.exists() {
            println!("| {file} | (missing: scripts/fetch-models.sh) | | | | | | | |");
            continue;
        }
        for grammar in ["none", "full", "fast"] {
            let cfg = LlmConfig {
                bin: bin.clone(),
                model: model.clone(),
                ctx: 4096,
                threads: 2,
                chat_template: template.map(str::to_string),
                gpu_layers: 0,
                deadline: Duration::from_secs(600),
                load_timeout: Duration::from_secs(120),
                max_tokens: 1024,
                grammar: grammar.into(),
            };
            let t0 = Instant::now();
            let p = LlmProcess::start(cfg).await.expect("LLM process");
            let load = t0.elapsed().as_secs_f64();
            let pid = p.pid().await.unwrap();
            let (mut pt, mut ps, mut gt, mut gs, mut wall, mut valid) = (0u64, 0.0, 0u64, 0.0, 0.0, 0);
            for _ in 0..runs {
                let t1 = Instant::now();
                match p.request(&system, &user, &schema).await {
                    Ok(r) => {
                        pt += r.prompt_tokens;
                        ps += r.prompt_seconds;
                        gt += r.generated_tokens;
                        gs += r.generate_seconds;
                        if validate(&r.json, &tpl, &speakers, &t, "en-GB").is_ok() {
                            valid += 1;
                        }
                    }
                    Err(e) => eprintln!("{file} {grammar}: {e}"),
                }
                wall += t1.elapsed().as_secs_f64();
            }
            println!(
                "| {file} | {grammar} | {load:.2} | {:.0} | {:.1} | {:.0} | {:.2} | {:.0} | {valid}/{runs} |",
                pt as f64 / ps.max(1e-9),
                gt as f64 / gs.max(1e-9),
                gt as f64 / runs as f64,
                wall / runs as f64,
                vm_hwm_mb(pid)
            );
        }
    }
}
