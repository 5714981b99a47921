//! Decoding and whisper in a supervised child process (`callscribe asr-child`),
//! so that a native crash on one recording costs a restart, not the worker.
//!
//! whisper.cpp can abort the whole process on inputs it did not expect (an
//! assertion in its DTW alignment did, until the vendored copy's fix:
//! vendor/whisper-rs-sys/PATCHES.md), and a decoder bug can do the same.
//! In-process, one such recording took down every worker that claimed it, in
//! turn, and the row ended "abandoned" with nothing said of the cause. Here the
//! worker only loses its child: the job fails with the stage it died in and the
//! signal, the row's crash is counted (`crashes`; failed at
//! `retry.max_crashes`), and the next job gets a fresh child.
//!
//! Protocol, JSON lines: the parent writes one [`Setup`] line, the child answers
//! [`Reply::Ready`] once the model is loaded (or [`Reply::Fatal`]); then per job
//! the parent writes a [`Request`] naming the downloaded file and the child
//! answers [`Reply::Stage`] as it enters each stage and ends with
//! [`Reply::Done`] or [`Reply::Failed`]. The child decodes the file itself, so
//! the audio never crosses the pipe and the worker's own memory stays small.
//!
//! Cancel-safe: a job dropped mid-request (timeout, shutdown, lost lease) kills
//! the child at once, which also stops whisper; the next job starts a new one.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{AsrConfig, Transcript, WhisperEngine};
use crate::audio::{self, AudioQuality};
use crate::config::SpeakersConfig;
use crate::diarize::metrics::CallMetrics;
use crate::pipeline::{Stage, StageError};

/// The first line the parent writes: what to load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub asr: AsrConfig,
    pub speakers: SpeakersConfig,
}

/// One job: decode the file at `path`, transcribe it, find the speakers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub path: PathBuf,
    pub ext: Option<String>,
    pub max_duration_seconds: f64,
    /// The recording crashed an inference process before: transcribe it
    /// without whisper.cpp's DTW alignment (see [`AsrConfig::dtw`]).
    #[serde(default)]
    pub careful: bool,
}

/// A line from the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // one reply at a time, read and dropped
pub enum Reply {
    Ready {
        model: String,
    },
    /// The model could not be loaded: the machine's fault; the child exits.
    Fatal {
        message: String,
    },
    Stage {
        id: u64,
        stage: Stage,
        audio_seconds: Option<f64>,
    },
    Done {
        id: u64,
        quality: AudioQuality,
        transcript: Transcript,
        metrics: CallMetrics,
        #[serde(default)]
        decode_seconds: f64,
    },
    Failed {
        id: u64,
        stage: Stage,
        transient: bool,
        worker: bool,
        message: String,
    },
}

/// What a finished request yields.
pub struct Recognised {
    pub quality: AudioQuality,
    pub transcript: Transcript,
    pub metrics: CallMetrics,
    /// Seconds the child spent decoding the recording.
    pub decode_seconds: f64,
}

/// The child's side: serve requests on stdin/stdout until stdin closes.
/// Blocking; the whole process is this loop.
pub fn serve() -> anyhow::Result<()> {
    use std::os::fd::FromRawFd;
    // stdout carries the protocol: keep a private handle to it and point fd 1 at
    // stderr, so that whatever a C library prints lands in the log, never in a reply.
    // SAFETY: plain descriptor and signal calls at start-up, before any other
    // thread runs. SIGTERM and SIGINT go to the whole process group (systemd,
    // Ctrl-C): the worker decides when its child stops, during its grace period.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let out_fd = unsafe { libc::dup(1) };
    if out_fd < 0 || unsafe { libc::dup2(2, 1) } < 0 {
        anyhow::bail!("cannot set up the reply channel: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `out_fd` is a fresh descriptor owned by nothing else.
    let mut out = std::io::LineWriter::new(unsafe { std::fs::File::from_raw_fd(out_fd) });
    let mut send = |r: &Reply| -> std::io::Result<()> {
        let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        line.push('\n');
        out.write_all(line.as_bytes())
    };
    let mut lines = std::io::stdin().lock().lines();
    let Some(first) = lines.next().transpose()? else { return Ok(()) };
    let setup: Setup = serde_json::from_str(&first)?;
    let engine = match WhisperEngine::load(setup.asr) {
        Ok(e) => e,
        Err(e) => {
            send(&Reply::Fatal { message: e.to_string() })?;
            return Ok(());
        }
    };
    send(&Reply::Ready { model: engine.model_name().to_string() })?;
    let never = AtomicBool::new(false);
    for line in lines {
        let req: Request = serde_json::from_str(&line?)?;
        let reply = handle(&engine, &setup.speakers, &req, &never, &mut |stage, audio_seconds| {
            let _ = send(&Reply::Stage { id: req.id, stage, audio_seconds });
        });
        send(&reply)?;
    }
    Ok(())
}

fn handle(
    engine: &WhisperEngine,
    speakers: &SpeakersConfig,
    req: &Request,
    abort: &AtomicBool,
    stage: &mut dyn FnMut(Stage, Option<f64>),
) -> Reply {
    let failed = |e: StageError| Reply::Failed {
        id: req.id,
        stage: e.stage,
        transient: e.transient,
        worker: e.worker,
        message: e.message,
    };
    stage(Stage::Decode, None);
    let started = std::time::Instant::now();
    let max = Duration::from_secs_f64(req.max_duration_seconds.max(0.0));
    let intake = match audio::intake(&req.path, req.ext.as_deref(), max) {
        Ok(i) => i,
        Err(e) => return failed(e.into()),
    };
    let decode_seconds = started.elapsed().as_secs_f64();
    stage(Stage::Transcribe, Some(intake.quality.duration_seconds));
    let careful;
    let engine = if req.careful {
        tracing::warn!("this recording crashed an inference process before: transcribing it without DTW alignment");
        careful = match engine.careful() {
            Ok(e) => e,
            Err(e) => return failed(e.into()),
        };
        &careful
    } else {
        engine
    };
    match crate::pipeline::recognise(engine, &intake.audio16k, speakers, abort) {
        Ok((transcript, metrics)) => {
            Reply::Done { id: req.id, quality: intake.quality, transcript, metrics, decode_seconds }
        }
        Err(e) => failed(e.into()),
    }
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// The worker's side: starts the child, hands it jobs, restarts it when it died.
pub struct AsrProcess {
    exe: PathBuf,
    /// `--log-level`, `--log-format`: the child logs as the worker does.
    log_args: [String; 4],
    setup: String,
    model: String,
    running: tokio::sync::Mutex<Option<Running>>,
    next_id: AtomicU64,
    load_timeout: Duration,
    /// How many times the child was (re)started.
    pub starts: AtomicU64,
}

/// Kills the child when a request is dropped before its answer: the child would
/// go on with a job nobody waits for (and whisper with it).
struct Armed<'a> {
    slot: &'a mut Option<Running>,
    done: bool,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(mut r) = self.slot.take() {
                let _ = r.child.start_kill();
            }
        }
    }
}

impl AsrProcess {
    /// Start `exe asr-child` and wait until its model is loaded. A model that does
    /// not load is reported here, at start-up.
    pub async fn start(
        exe: PathBuf,
        asr: AsrConfig,
        speakers: SpeakersConfig,
        log: &crate::config::LogConfig,
    ) -> Result<AsrProcess, StageError> {
        use crate::config::LogFormat;
        let format = match log.format {
            LogFormat::Auto => "auto",
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        };
        let log_args = ["--log-level".into(), log.level.clone(), "--log-format".into(), format.into()];
        let setup = serde_json::to_string(&Setup { asr, speakers })
            .map_err(|e| StageError::new(Stage::Transcribe, false, e.to_string()))?;
        let mut p = AsrProcess {
            exe,
            log_args,
            setup,
            model: String::new(),
            running: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            load_timeout: Duration::from_secs(300),
            starts: AtomicU64::new(0),
        };
        let (r, model) = p.spawn().await?;
        p.model = model;
        *p.running.get_mut() = Some(r);
        Ok(p)
    }

    pub fn model_name(&self) -> &str {
        &self.model
    }

    /// The child's process id while it runs (tests kill it).
    pub async fn pid(&self) -> Option<u32> {
        self.running.lock().await.as_ref().and_then(|r| r.child.id())
    }

    fn worker_fault(message: String) -> StageError {
        StageError { stage: Stage::Transcribe, transient: true, worker: true, crashed: false, message }
    }

    async fn spawn(&self) -> Result<(Running, String), StageError> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.log_args)
            .arg("asr-child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // SAFETY: prctl only, between fork and exec. The child dies with the worker
        // (a SIGKILLed worker must not leave whisper running on).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            Self::worker_fault(format!("cannot start the inference process {}: {e}", self.exe.display()))
        })?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let t = Instant::now();
        let started = async {
            stdin.write_all(format!("{}\n", self.setup).as_bytes()).await?;
            stdin.flush().await?;
            stdout.next_line().await
        };
        let line = match tokio::time::timeout(self.load_timeout, started).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = child.wait().await.map(describe).unwrap_or_else(|e| e.to_string());
                return Err(Self::worker_fault(format!("the inference process exited at start ({status})")));
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(Self::worker_fault(format!(
                    "the whisper model did not load within {:?}",
                    self.load_timeout
                )));
            }
        };
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Ready { model }) => {
                self.starts.fetch_add(1, Ordering::Relaxed);
                crate::metrics::global().process_started("inference", t.elapsed().as_secs_f64());
                tracing::info!(model = %model, seconds = t.elapsed().as_secs_f64(), "inference process ready");
                Ok((Running { child, stdin, stdout }, model))
            }
            Ok(Reply::Fatal { message }) => {
                let _ = child.kill().await;
                Err(Self::worker_fault(message))
            }
            _ => {
                let _ = child.kill().await;
                Err(Self::worker_fault(format!("the inference process said {line:?} instead of ready")))
            }
        }
    }

    /// Decode and transcribe the file at `path` in the child; `stage` hears each
    /// stage the child enters (with the audio's length once known).
    pub async fn run(
        &self,
        path: &Path,
        ext: Option<&str>,
        max_duration: Duration,
        careful: bool,
        stage: &(dyn Fn(Stage, Option<f64>) + Send + Sync),
    ) -> Result<Recognised, StageError> {
        let mut guard = self.running.lock().await;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = serde_json::to_string(&Request {
            id,
            path: path.to_path_buf(),
            ext: ext.map(str::to_string),
            max_duration_seconds: max_duration.as_secs_f64(),
            careful,
        })
        .map_err(|e| StageError::new(Stage::Decode, false, e.to_string()))?
            + "\n";
        let mut armed = Armed { slot: &mut guard, done: false };
        // A child that died between jobs (killed while idle) is started again once.
        for fresh in [false, true] {
            if armed.slot.is_none() {
                *armed.slot = Some(self.spawn().await?.0);
            }
            let r = armed.slot.as_mut().expect("running");
            let sent = async {
                r.stdin.write_all(line.as_bytes()).await?;
                r.stdin.flush().await
            };
            if sent.await.is_ok() {
                break;
            }
            if let Some(mut dead) = armed.slot.take() {
                let _ = dead.child.kill().await;
            }
            if fresh {
                return Err(Self::worker_fault("the inference process does not take requests".into()));
            }
        }
        let mut current = Stage::Decode;
        loop {
            let r = armed.slot.as_mut().expect("running");
            let line = match r.stdout.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => {
                    // The child died on this recording.
                    let mut dead = armed.slot.take().expect("running");
                    armed.done = true;
                    let status = dead.child.wait().await.map(describe).unwrap_or_else(|e| e.to_string());
                    return Err(StageError {
                        stage: current,
                        transient: true,
                        worker: false,
                        crashed: true,
                        message: format!(
                            "the inference process died on this recording in stage {} ({status})",
                            current.as_str()
                        ),
                    });
                }
            };
            match serde_json::from_str::<Reply>(&line) {
                Ok(Reply::Stage { id: rid, stage: s, audio_seconds }) if rid == id => {
                    current = s;
                    stage(s, audio_seconds);
                }
                Ok(Reply::Done { id: rid, quality, transcript, metrics, decode_seconds }) if rid == id => {
                    armed.done = true;
                    return Ok(Recognised { quality, transcript, metrics, decode_seconds });
                }
                Ok(Reply::Failed { id: rid, stage, transient, worker, message }) if rid == id => {
                    armed.done = true;
                    return Err(StageError { stage, transient, worker, crashed: false, message });
                }
                other => {
                    tracing::warn!(reply = ?other.map(|_| ()).map_err(|e| e.to_string()), "unexpected line from the inference process")
                }
            }
        }
    }
}

/// An exit status in words: the signal's name for a crash.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGABRT => "SIGABRT, a native assertion or abort",
                libc::SIGSEGV => "SIGSEGV, a native memory fault",
                libc::SIGBUS => "SIGBUS",
                libc::SIGFPE => "SIGFPE",
                libc::SIGILL => "SIGILL",
                libc::SIGKILL => "SIGKILL, e.g. out of memory",
                _ => "",
            };
            if name.is_empty() {
                format!("killed by signal {sig}")
            } else {
                format!("killed by signal {sig}: {name}")
            }
        }
        None => format!("exit status {}", status.code().unwrap_or(-1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn crashes_are_named_by_their_signal() {
        assert_eq!(
            describe(std::process::ExitStatus::from_raw(6)),
            "killed by signal 6: SIGABRT, a native assertion or abort"
        );
        assert_eq!(
            describe(std::process::ExitStatus::from_raw(11)),
            "killed by signal 11: SIGSEGV, a native memory fault"
        );
        assert_eq!(describe(std::process::ExitStatus::from_raw(3 << 8)), "exit status 3");
    }

    #[test]
    fn replies_round_trip_as_json_lines() {
        let r = Reply::Stage { id: 7, stage: Stage::Transcribe, audio_seconds: Some(12.5) };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(line, r#"{"stage":{"id":7,"stage":"transcribe","audio_seconds":12.5}}"#);
        match serde_json::from_str::<Reply>(&line).unwrap() {
            Reply::Stage { id: 7, stage: Stage::Transcribe, audio_seconds: Some(s) } => assert_eq!(s, 12.5),
            other => panic!("{other:?}"),
        }
    }
}
