//! callscribe-llm: llama.cpp in its own process, so that its ggml never meets
//! whisper.cpp's (two ggml versions cannot share one binary) and a crash here
//! never takes the worker down.
//!
//! Protocol: JSON lines. On start it loads the model once and prints
//! `{"ready":true,"model":…,"n_ctx":…,"load_seconds":…}`. Then per line on stdin
//! `{"id":N,"system":…,"user":…,"schema":{…}|null,"max_tokens":N,"grammar":"fast"|"full"|"none"}`
//! it prints one line `{"id":N,"ok":true,"json":…,"text":…,"prompt_tokens":…,
//! "generated_tokens":…,"prompt_seconds":…,"generate_seconds":…,"finish":"stop"|"length"}`
//! or `{"id":N,"ok":false,"error":…}`. `{"id":N,"count":"text"}` asks how many
//! tokens the model's tokenizer makes of a text: `{"id":N,"ok":true,"tokens":…}`
//! (the worker sizes prompts in real tokens: Devanagari costs several a character).
//!
//! Structured output: the JSON schema becomes a llama.cpp grammar
//! (`json_schema_to_grammar`). In `fast` mode the token is picked greedily from
//! the raw logits and only that token is checked against the grammar; the whole
//! vocabulary is filtered only when the pick is rejected. With gemma's
//! 262k-token vocabulary that is ~3.5× faster than filtering every step
//! (`full`), with the same output: greedy over the grammar-allowed tokens picks
//! the raw argmax whenever the argmax is allowed.

use std::io::{BufRead, Write};
use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use serde::Deserialize;
use serde_json::{json, Value};

struct Args {
    model: String,
    ctx: u32,
    threads: i32,
    template: Option<String>,
    gpu_layers: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { model: String::new(), ctx: 4096, threads: 0, template: None, gpu_layers: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--model" => a.model = v()?,
            "--ctx" => a.ctx = v()?.parse().map_err(|_| "--ctx takes a number")?,
            "--threads" => a.threads = v()?.parse().map_err(|_| "--threads takes a number")?,
            "--template" => a.template = Some(v()?),
            "--gpu-layers" => a.gpu_layers = v()?.parse().map_err(|_| "--gpu-layers takes a number")?,
            "--help" | "-h" => {
                println!(
                    "callscribe-llm --model FILE.gguf [--ctx 4096] [--threads N] [--template NAME] [--gpu-layers N]\n\
                     JSON lines on stdin/stdout; started and supervised by `callscribe run`."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.model.is_empty() {
        return Err("--model is required".into());
    }
    if a.threads <= 0 {
        a.threads = std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(2);
    }
    Ok(a)
}

#[derive(Deserialize)]
struct Request {
    id: u64,
    #[serde(default)]
    system: String,
    #[serde(default)]
    user: String,
    /// A text to count the tokens of (no generation).
    #[serde(default)]
    count: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default = "default_max_tokens")]
    max_tokens: usize,
    #[serde(default = "default_grammar")]
    grammar: String,
}

fn default_max_tokens() -> usize {
    512
}
fn default_grammar() -> String {
    "fast".into()
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: LlamaChatTemplate,
    n_batch: usize,
}

impl Engine<'_> {
    fn prompt(&self, system: &str, user: &str) -> Result<String, String> {
        let mut chat = Vec::new();
        if !system.is_empty() {
            chat.push(LlamaChatMessage::new("system".into(), system.into()).map_err(|e| e.to_string())?);
        }
        chat.push(LlamaChatMessage::new("user".into(), user.into()).map_err(|e| e.to_string())?);
        self.model.apply_chat_template(&self.template, &chat, true).map_err(|e| format!("chat template: {e}"))
    }

    fn run(&mut self, req: &Request) -> Result<Value, String> {
        let prompt = self.prompt(&req.system, &req.user)?;
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
        let n_ctx = self.ctx.n_ctx() as usize;
        if tokens.len() + req.max_tokens > n_ctx {
            return Err(format!(
                "prompt too long: {} tokens + {} to generate exceed the context of {n_ctx}",
                tokens.len(),
                req.max_tokens
            ));
        }
        let mut grammar = match (&req.schema, req.grammar.as_str()) {
            (Some(schema), "fast" | "full") => {
                let g = llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| format!("schema: {e}"))?;
                let g = compact_space(&g);
                Some(LlamaSampler::grammar(self.model, &g, "root").map_err(|e| format!("grammar: {e:?}"))?)
            }
            _ => None,
        };
        let full = req.grammar == "full";
        let grammar_on = grammar.is_some();
        self.ctx.clear_kv_cache();
        let t0 = Instant::now();
        let mut batch = LlamaBatch::new(self.n_batch.max(1), 1);
        let mut pos = 0i32;
        for chunk in tokens.chunks(self.n_batch) {
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                let last = pos as usize + i + 1 == tokens.len();
                batch.add(*t, pos + i as i32, &[0], last).map_err(|e| e.to_string())?;
            }
            self.ctx.decode(&mut batch).map_err(|e| format!("decode: {e}"))?;
            pos += chunk.len() as i32;
        }
        let prompt_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut out: Vec<u8> = Vec::new();
        let mut generated = 0usize;
        let mut finish = "length";
        let mut rejections = 0usize;
        while generated < req.max_tokens {
            let logits_at = batch.n_tokens() - 1;
            let token = {
                let greedy = self
                    .ctx
                    .candidates_ith(logits_at)
                    .max_by(|a, b| a.logit().total_cmp(&b.logit()))
                    .map(|d| d.id())
                    .ok_or("no logits")?;
                match grammar.as_mut() {
                    None => greedy,
                    Some(g) => {
                        let allowed = !full && {
                            let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(greedy, 1.0, 0.0)], false);
                            one.apply_sampler(g);
                            one.data.first().is_some_and(|d| d.logit().is_finite())
                        };
                        if allowed {
                            greedy
                        } else {
                            rejections += 1;
                            let mut all = LlamaTokenDataArray::from_iter(self.ctx.candidates_ith(logits_at), false);
                            all.apply_sampler(g);
                            all.data
                                .iter()
                                .filter(|d| d.logit().is_finite())
                                .max_by(|a, b| a.logit().total_cmp(&b.logit()))
                                .map(|d| d.id())
                                .ok_or("the grammar allows no token")?
                        }
                    }
                }
            };
            if let Some(g) = grammar.as_mut() {
                g.accept(token);
            }
            if vocab.is_eog(token) {
                finish = "stop";
                break;
            }
            out.extend(vocab.token_to_piece(token, false, None));
            generated += 1;
            batch.clear();
            batch.add(token, pos, &[0], true).map_err(|e| e.to_string())?;
            pos += 1;
            self.ctx.decode(&mut batch).map_err(|e| format!("decode: {e}"))?;
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let parsed: Option<Value> = if req.schema.is_some() { serde_json::from_str(text.trim()).ok() } else { None };
        // Without a grammar the caller validates (and may get null): report, don't fail.
        if grammar_on && parsed.is_none() {
            return Err(format!(
                "output is not complete JSON after {generated} tokens (finish: {finish}); raise max_tokens"
            ));
        }
        Ok(json!({
            "ok": true,
            "text": text,
            "json": parsed,
            "prompt_tokens": tokens.len(),
            "generated_tokens": generated,
            "grammar_rejections": rejections,
            "prompt_seconds": prompt_seconds,
            "generate_seconds": t1.elapsed().as_secs_f64(),
            "finish": finish,
        }))
    }
}

/// Replace the grammar's free whitespace (up to 20 blanks or newlines between any
/// two JSON tokens) with at most one space: small models otherwise spend the
/// token budget on blank lines and the JSON never closes.
fn compact_space(grammar: &str) -> String {
    grammar
        .lines()
        .map(|l| if l.trim_start().starts_with("space ::=") { "space ::= \" \"?" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("callscribe-llm: {e}");
            std::process::exit(2);
        }
    };
    let mut backend = match LlamaBackend::init() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("callscribe-llm: llama.cpp backend: {e}");
            std::process::exit(1);
        }
    };
    backend.void_logs();
    let t = Instant::now();
    let params = LlamaModelParams::default().with_n_gpu_layers(args.gpu_layers);
    let model = match LlamaModel::load_from_file(&backend, &args.model, &params) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("callscribe-llm: cannot load {}: {e}", args.model);
            std::process::exit(1);
        }
    };
    let template = match &args.template {
        Some(name) => LlamaChatTemplate::new(name).expect("template name"),
        None => model.chat_template(None).unwrap_or_else(|_| LlamaChatTemplate::new("chatml").expect("chatml")),
    };
    let n_ctx = args.ctx.min(model.n_ctx_train().max(512));
    let n_batch = 512usize;
    let cparams = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_batch as u32)
        .with_n_threads(args.threads)
        .with_n_threads_batch(args.threads);
    let ctx = match model.new_context(&backend, cparams) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("callscribe-llm: context: {e}");
            std::process::exit(1);
        }
    };
    let mut engine = Engine { model: &model, ctx, template, n_batch };
    let name = std::path::Path::new(&args.model).file_name().and_then(|n| n.to_str()).unwrap_or("model").to_string();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let ready = json!({"ready": true, "model": name, "n_ctx": n_ctx, "load_seconds": t.elapsed().as_secs_f64()});
    if writeln!(out, "{ready}").and_then(|_| out.flush()).is_err() {
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let id = req.id;
                let mut v = match &req.count {
                    Some(text) => {
                        json!({"ok": true, "tokens": engine.model.vocab().tokenize(text.as_bytes(), false, true).len()})
                    }
                    None => engine.run(&req).unwrap_or_else(|e| json!({"ok": false, "error": e})),
                };
                v["id"] = json!(id);
                v
            }
            Err(e) => json!({"id": null, "ok": false, "error": format!("bad request: {e}")}),
        };
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}
