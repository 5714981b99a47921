//! The supervised `callscribe-llm` process. Started once (model loaded once),
//! spoken to in JSON lines, one request at a time. A request that overruns its
//! deadline gets the process killed and restarted; a process that died is
//! restarted and the request tried once more; when it cannot be revived the
//! stage fails (transient: the job is retried later), never the worker.
//!
//! Cancel-safe: a job future dropped while it waits (job timeout, lost lease,
//! shutdown) leaves its request in flight. Its reply still arrives, and the next
//! request reads past it: replies carry the request id, and any reply for an
//! older id is discarded. A request dropped in the middle of writing its line
//! would leave half a line in the pipe, so that case restarts the process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use super::AnalyzeError;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The `callscribe-llm` executable.
    pub bin: PathBuf,
    pub model: PathBuf,
    pub ctx: u32,
    pub threads: usize,
    /// llama.cpp chat template name; `None`: the model's own (else chatml).
    pub chat_template: Option<String>,
    pub gpu_layers: u32,
    /// Per request.
    pub deadline: Duration,
    /// Model load at start.
    pub load_timeout: Duration,
    pub max_tokens: usize,
    /// `fast` (check the greedy pick only), `full` (filter every step) or `none`.
    pub grammar: String,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Set while a request line is being written; still set when the writer
    /// was dropped half-way, which leaves the pipe unusable.
    writing: bool,
    /// Stale replies read past (requests whose caller went away).
    discarded: u64,
}

/// What one request returned.
#[derive(Debug, Clone)]
pub struct Reply {
    pub json: Value,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    pub prompt_seconds: f64,
    pub generate_seconds: f64,
}

pub struct LlmProcess {
    config: LlmConfig,
    running: Mutex<Option<Running>>,
    next_id: std::sync::atomic::AtomicU64,
    model_name: String,
    /// How many times the process was (re)started.
    pub starts: std::sync::atomic::AtomicU64,
}

impl LlmProcess {
    /// A supervisor that has not started the process yet.
    pub fn new(config: LlmConfig) -> LlmProcess {
        let model_name = config.model.file_name().and_then(|n| n.to_str()).unwrap_or("model").to_string();
        LlmProcess { config, running: Mutex::new(None), next_id: 1.into(), model_name, starts: 0.into() }
    }

    /// Start the process and wait until its model is loaded.
    pub async fn start(config: LlmConfig) -> Result<LlmProcess, AnalyzeError> {
        let p = LlmProcess::new(config);
        p.warm_up().await?;
        Ok(p)
    }

    /// Start the process now if it is not running (requests also start it).
    pub async fn warm_up(&self) -> Result<(), AnalyzeError> {
        let mut guard = self.running.lock().await;
        if guard.is_none() {
            *guard = Some(self.spawn().await?);
        }
        Ok(())
    }

    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Replies to dropped requests read past since the process started.
    pub async fn discarded_replies(&self) -> u64 {
        self.running.lock().await.as_ref().map_or(0, |r| r.discarded)
    }

    /// The process id, while it runs (tests kill it).
    pub async fn pid(&self) -> Option<u32> {
        self.running.lock().await.as_ref().and_then(|r| r.child.id())
    }

    async fn spawn(&self) -> Result<Running, AnalyzeError> {
        let c = &self.config;
        if !c.model.exists() {
            return Err(AnalyzeError::Unavailable(format!("LLM model {} not found", c.model.display())));
        }
        let mut cmd = Command::new(&c.bin);
        cmd.arg("--model")
            .arg(&c.model)
            .args(["--ctx", &c.ctx.to_string(), "--threads", &c.threads.to_string()])
            .args(["--gpu-layers", &c.gpu_layers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(t) = &c.chat_template {
            cmd.args(["--template", t]);
        }
        let mut child =
            cmd.spawn().map_err(|e| AnalyzeError::Unavailable(format!("cannot start {}: {e}", c.bin.display())))?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let t = Instant::now();
        let ready = tokio::time::timeout(c.load_timeout, stdout.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line.contains("\"ready\":true") => {
                self.starts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::metrics::global().process_started("llm", t.elapsed().as_secs_f64());
                tracing::info!(model = %self.model_name, seconds = t.elapsed().as_secs_f64(), "LLM process ready");
                Ok(Running { child, stdin, stdout, writing: false, discarded: 0 })
            }
            Ok(Ok(other)) => {
                let _ = child.kill().await;
                Err(AnalyzeError::Unavailable(format!(
                    "LLM process did not start: {}",
                    other.unwrap_or_else(|| "exited".into())
                )))
            }
            Ok(Err(e)) => {
                let _ = child.kill().await;
                Err(AnalyzeError::Unavailable(format!("LLM process: {e}")))
            }
            Err(_) => {
                let _ = child.kill().await;
                Err(AnalyzeError::Unavailable(format!("LLM model did not load within {:?}", c.load_timeout)))
            }
        }
    }

    /// One structured request: the answer is JSON satisfying `schema`.
    pub async fn request(&self, system: &str, user: &str, schema: &Value) -> Result<Reply, AnalyzeError> {
        let (text, id) = self
            .roundtrip(|id| {
                json!({
                    "id": id, "system": system, "user": user, "schema": schema,
                    "max_tokens": self.config.max_tokens, "grammar": self.config.grammar,
                })
            })
            .await?;
        parse_reply(&text, id)
    }

    /// How many tokens the model's own tokenizer makes of `text`.
    pub async fn count_tokens(&self, text: &str) -> Result<u64, AnalyzeError> {
        let (line, id) = self.roundtrip(|id| json!({"id": id, "count": text})).await?;
        let v: Value =
            serde_json::from_str(&line).map_err(|e| AnalyzeError::Unavailable(format!("unreadable LLM reply: {e}")))?;
        if v["id"].as_u64() != Some(id) {
            return Err(AnalyzeError::Unavailable(format!("LLM reply for request {} while waiting for {id}", v["id"])));
        }
        v["tokens"].as_u64().ok_or_else(|| AnalyzeError::Unavailable("the LLM process did not count tokens".into()))
    }

    /// Send one request line (made by `body` from its id) and read its reply
    /// line, restarting the process when it died or overran.
    async fn roundtrip(&self, body: impl Fn(u64) -> Value) -> Result<(String, u64), AnalyzeError> {
        let mut guard = self.running.lock().await;
        if guard.as_ref().is_some_and(|r| r.writing) {
            tracing::warn!("an earlier LLM request was dropped while being written; restarting the process");
            if let Some(mut r) = guard.take() {
                let _ = r.child.kill().await;
            }
        }
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(self.spawn().await?);
            }
            let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let line = body(id).to_string();
            let r = guard.as_mut().expect("running");
            r.writing = true;
            let sent = async {
                r.stdin.write_all(line.as_bytes()).await?;
                r.stdin.write_all(b"\n").await?;
                r.stdin.flush().await
            }
            .await;
            r.writing = false;
            let answer = match sent {
                Ok(()) => tokio::time::timeout(self.config.deadline, read_reply(r, id)).await,
                Err(e) => Ok(Err(e)),
            };
            match answer {
                Ok(Ok(Some(text))) => {
                    // A line that is not a reply to this request: the channel is
                    // broken, not the row.
                    if reply_id(&text) != Some(id) {
                        if let Some(mut r) = guard.take() {
                            let _ = r.child.kill().await;
                        }
                        return Err(AnalyzeError::Unavailable(format!(
                            "unreadable LLM reply while waiting for request {id}; the LLM process was restarted"
                        )));
                    }
                    return Ok((text, id));
                }
                Err(_) => {
                    // Overran its deadline: kill it, start a fresh one for the next job.
                    tracing::warn!(
                        deadline_seconds = self.config.deadline.as_secs_f64(),
                        "LLM request overran; restarting the process"
                    );
                    if let Some(mut r) = guard.take() {
                        let _ = r.child.kill().await;
                    }
                    *guard = self.spawn().await.ok();
                    return Err(AnalyzeError::Unavailable(format!(
                        "LLM request overran its deadline of {:?}; the process was restarted",
                        self.config.deadline
                    )));
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    // The process died: restart it and try once more.
                    let status = match guard.take() {
                        Some(mut r) => r.child.wait().await.map(|s| s.to_string()).unwrap_or_default(),
                        None => String::new(),
                    };
                    tracing::warn!(%status, attempt, "LLM process died; restarting");
                }
            }
        }
        Err(AnalyzeError::Unavailable("the LLM process keeps dying".into()))
    }
}

/// The next reply line for request `id`, reading past replies to older requests
/// whose callers went away. `None` when the process closed its output.
async fn read_reply(r: &mut Running, id: u64) -> std::io::Result<Option<String>> {
    loop {
        let Some(text) = r.stdout.next_line().await? else { return Ok(None) };
        match reply_id(&text) {
            Some(old) if old < id => {
                r.discarded += 1;
                tracing::debug!(stale = old, waiting_for = id, "discarded the reply to a dropped LLM request");
            }
            _ => return Ok(Some(text)),
        }
    }
}

fn reply_id(text: &str) -> Option<u64> {
    serde_json::from_str::<Value>(text).ok()?.get("id")?.as_u64()
}

/// A reply line: the model's answer, the model's own failure (`Invalid`: the
/// answer does not fit), or a line that is no reply to this request
/// (`Unavailable`: the channel is broken, the row is not at fault).
fn parse_reply(text: &str, id: u64) -> Result<Reply, AnalyzeError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| AnalyzeError::Unavailable(format!("unreadable LLM reply: {e}")))?;
    if v["id"].as_u64() != Some(id) {
        return Err(AnalyzeError::Unavailable(format!("LLM reply for request {} while waiting for {id}", v["id"])));
    }
    if v["ok"] != json!(true) {
        return Err(AnalyzeError::Invalid(v["error"].as_str().unwrap_or("unknown error").to_string()));
    }
    Ok(Reply {
        json: v["json"].clone(),
        prompt_tokens: v["prompt_tokens"].as_u64().unwrap_or(0),
        generated_tokens: v["generated_tokens"].as_u64().unwrap_or(0),
        prompt_seconds: v["prompt_seconds"].as_f64().unwrap_or(0.0),
        generate_seconds: v["generate_seconds"].as_f64().unwrap_or(0.0),
    })
}

/// `callscribe-llm` beside the running executable (where it is shipped).
pub fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("callscribe-llm")))
        .unwrap_or_else(|| PathBuf::from("callscribe-llm"))
}
