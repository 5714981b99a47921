//! The claim loop: poll with jitter, idle with backoff when the queue is empty,
//! run up to `concurrency` jobs at once, heartbeat each while it runs, act on
//! each outcome (complete, retry with backoff, fail, hand back), and drain on
//! shutdown. Shutdown is a parameter ([`CancellationToken`]): stop claiming, let
//! running jobs finish within the grace period, then hand the rest back to
//! `pending` without spending their attempt.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{RetryConfig, WorkerConfig};
use crate::pipeline::{Pipeline, Progress, Stage};
use crate::queue::maintenance::{Rescuer, RescuerConfig};
use crate::queue::{Job, JobResults, Lease, Queue, QueueError};

/// How the loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Until shutdown.
    Forever,
    /// Until nothing is claimable and nothing runs (batch mode), or shutdown.
    Drain,
}

/// What became of one claimed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Retried,
    Failed,
    /// Handed back to `pending` at shutdown, attempt not spent.
    Released,
    /// Another worker holds the row now; nothing was written.
    LeaseLost,
    /// The final write could not reach the database; the rescuer will requeue it.
    Abandoned,
    /// Handed back for the worker's own fault, attempt not spent.
    Deferred,
}

/// Counts of outcomes for one run of the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub completed: u64,
    pub retried: u64,
    pub failed: u64,
    pub released: u64,
    pub lease_lost: u64,
    pub abandoned: u64,
    pub deferred: u64,
}

impl Outcome {
    /// The outcome's name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Released => "released",
            Outcome::LeaseLost => "lease_lost",
            Outcome::Abandoned => "abandoned",
            Outcome::Deferred => "deferred",
        }
    }
}

impl RunSummary {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Completed => self.completed += 1,
            Outcome::Deferred => self.deferred += 1,
            Outcome::Retried => self.retried += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Released => self.released += 1,
            Outcome::LeaseLost => self.lease_lost += 1,
            Outcome::Abandoned => self.abandoned += 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the database stayed unreachable for {0} consecutive polls: {1}")]
    DatabaseDown(u32, QueueError),
}

/// Backoff before retry number `attempt` (1-based): `base · 2^(attempt−1)`,
/// capped at `max`, with "equal jitter" (half fixed, half random) so a burst of
/// failures does not come back as a burst.
pub fn backoff(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + half.mul_f64(rng.gen::<f64>())
}

pub struct Worker {
    queue: Arc<dyn Queue>,
    pipeline: Arc<Pipeline>,
    config: WorkerConfig,
    retry: RetryConfig,
    faults: Arc<FaultGate>,
}

/// The worker's own faults: after one, claiming pauses (`worker.fault_backoff`,
/// doubling up to [`FAULT_BACKOFF_MAX`] while faults repeat); a completed job
/// clears it. Rows are not tried while the worker itself is broken.
#[derive(Debug, Default)]
pub struct FaultGate {
    state: std::sync::Mutex<Option<(std::time::Instant, Duration)>>,
}

/// The longest pause between checks of a lasting worker fault.
pub const FAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);

impl FaultGate {
    /// Record a fault; returns the pause before the next claim.
    pub fn trip(&self, first: Duration) -> Duration {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let pause = match *st {
            Some((_, last)) => (last * 2).min(FAULT_BACKOFF_MAX.max(first)),
            None => first,
        };
        *st = Some((std::time::Instant::now() + pause, pause));
        crate::metrics::global().fault(true);
        pause
    }

    pub fn clear(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
        crate::metrics::global().fault(false);
    }

    /// How long claiming must still wait.
    pub fn wait(&self) -> Option<Duration> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.and_then(|(until, _)| until.checked_duration_since(std::time::Instant::now()))
    }
}

/// The message of a job task that ended in a panic.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("the job's task ended unexpectedly: {e}");
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The longest pause between claims while the database is unreachable.
const DB_RETRY_MAX: Duration = Duration::from_secs(2);

/// In drain mode, give up after this many consecutive failed polls.
const DRAIN_MAX_DB_ERRORS: u32 = 10;

impl Worker {
    pub fn new(queue: Arc<dyn Queue>, pipeline: Arc<Pipeline>, config: WorkerConfig, retry: RetryConfig) -> Self {
        Worker { queue, pipeline, config, retry, faults: Arc::new(FaultGate::default()) }
    }

    /// The worker's fault gate (for `/readyz`).
    pub fn faults(&self) -> Arc<FaultGate> {
        self.faults.clone()
    }

    pub fn rescuer(&self) -> Rescuer {
        Rescuer::new(
            self.queue.clone(),
            RescuerConfig {
                stale_after: self.config.stale_after,
                interval: self.config.rescue_interval,
                default_max_attempts: self.retry.max_attempts,
                max_crashes: self.retry.max_crashes,
            },
        )
    }

    /// The loop. Returns when `shutdown` fires (after draining) or, in
    /// [`RunMode::Drain`], when the queue has nothing claimable left.
    pub async fn run(&self, mode: RunMode, shutdown: CancellationToken) -> Result<RunSummary, WorkerError> {
        let worker_id = self.config.id.clone();
        tracing::info!(worker.id = %worker_id, concurrency = self.config.concurrency, ?mode, "worker started");
        let stop_maintenance = CancellationToken::new();
        let rescuer = tokio::spawn(self.rescuer().run(stop_maintenance.clone()));
        let jobs_cancel = CancellationToken::new();
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut summary = RunSummary::default();
        let mut idle = self.config.poll_interval;
        let mut db_errors = 0u32;
        let mut result = Ok(());

        loop {
            while let Some(done) = tasks.try_join_next() {
                summary.add(done.unwrap_or(Outcome::Abandoned));
            }
            if shutdown.is_cancelled() {
                break;
            }
            if mode == RunMode::Drain && summary.deferred > 0 {
                // A batch run on a broken worker would only hand rows back, pause
                // and try again forever: stop, leaving the rows as they were.
                tracing::error!(deferred = summary.deferred, "worker fault in drain mode: stopping");
                break;
            }
            if let Some(wait) = self.faults.wait() {
                // The worker itself is broken: try no row until the pause is over.
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                        summary.add(done.unwrap_or(Outcome::Abandoned));
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let free = self.config.concurrency as usize - tasks.len();
            let mut claimed = 0;
            if free > 0 {
                match self.queue.claim(&worker_id, free as u32).await {
                    Ok(jobs) => {
                        db_errors = 0;
                        claimed = jobs.len();
                        for _ in 0..claimed {
                            crate::metrics::global().job("claimed");
                        }
                        if claimed > 0 {
                            self.pipeline.refresh_analysis_tiers(self.queue.as_ref()).await;
                        }
                        for job in jobs {
                            let ctx = JobContext {
                                queue: self.queue.clone(),
                                pipeline: self.pipeline.clone(),
                                config: self.config.clone(),
                                retry: self.retry.clone(),
                                cancel: jobs_cancel.clone(),
                                faults: self.faults.clone(),
                                lost: CancellationToken::new(),
                            };
                            // Stable field names on every line of the job.
                            let span = tracing::info_span!(
                                "job",
                                job_id = job.id,
                                apex_id = job.apex_id.as_deref().unwrap_or(""),
                                attempt = job.attempts,
                                worker_id = %worker_id,
                            );
                            tasks.spawn(ctx.run(job).instrument(span));
                        }
                    }
                    Err(e) => {
                        db_errors += 1;
                        tracing::warn!(error = %e, consecutive = db_errors, "claim failed; backing off");
                        if mode == RunMode::Drain && db_errors >= DRAIN_MAX_DB_ERRORS {
                            result = Err(WorkerError::DatabaseDown(db_errors, e));
                            break;
                        }
                    }
                }
            }
            if mode == RunMode::Drain && claimed == 0 && tasks.is_empty() && db_errors == 0 {
                // An empty claim can also mean every due row was locked by another
                // worker's claim at that instant (SKIP LOCKED); the queue is only
                // drained when no due row is left pending.
                match self.queue.stats().await {
                    Ok(s) if s.pending > s.deferred => {
                        tracing::debug!(due = s.pending - s.deferred, "due rows held by other claims; polling again");
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(self.config.poll_interval.min(Duration::from_millis(200))) => {}
                        }
                        continue;
                    }
                    _ => break,
                }
            }
            if claimed > 0 {
                idle = self.config.poll_interval;
                if tasks.len() < self.config.concurrency as usize {
                    continue;
                }
            } else if db_errors > 0 {
                // The database is away: poll it every few seconds at most, so that
                // claiming resumes soon after it is back.
                idle = (idle * 2).min(self.config.idle_max_interval).min(DB_RETRY_MAX);
            } else if tasks.is_empty() || free > 0 {
                idle = (idle * 2).min(self.config.idle_max_interval);
            }
            let pause = if mode == RunMode::Drain && db_errors == 0 {
                // Batch mode: the queue is only re-polled when a slot frees up.
                Duration::from_secs(3600)
            } else {
                idle.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    summary.add(done.unwrap_or(Outcome::Abandoned));
                    idle = self.config.poll_interval;
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }

        if !tasks.is_empty() {
            tracing::info!(
                running = tasks.len(),
                grace_seconds = self.config.shutdown_grace.as_secs_f64(),
                "stopping: waiting for running jobs"
            );
            let grace = tokio::time::sleep(self.config.shutdown_grace);
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    next = tasks.join_next() => match next {
                        Some(done) => summary.add(done.unwrap_or(Outcome::Abandoned)),
                        None => break,
                    },
                    _ = &mut grace, if !jobs_cancel.is_cancelled() => {
                        tracing::warn!(running = tasks.len(), "grace period over: handing running jobs back");
                        jobs_cancel.cancel();
                    }
                }
            }
        }
        stop_maintenance.cancel();
        let _ = rescuer.await;
        tracing::info!(
            completed = summary.completed,
            failed = summary.failed,
            retried = summary.retried,
            released = summary.released,
            deferred = summary.deferred,
            lease_lost = summary.lease_lost,
            abandoned = summary.abandoned,
            "worker stopped"
        );
        result.map(|_| summary)
    }
}

/// What a job task needs; owned so the task is `'static`.
struct JobContext {
    queue: Arc<dyn Queue>,
    pipeline: Arc<Pipeline>,
    config: WorkerConfig,
    retry: RetryConfig,
    cancel: CancellationToken,
    faults: Arc<FaultGate>,
    /// Cancelled by the heartbeat when the row is no longer held by this lease.
    lost: CancellationToken,
}

#[allow(clippy::large_enum_variant)] // one per running job
enum Ran {
    Finished(Result<JobResults, crate::pipeline::StageError>),
    /// The job's task panicked (or was cancelled from outside); the message.
    Panicked(String),
    TimedOut(Duration),
    Cancelled,
    LeaseLost,
}

impl JobContext {
    async fn run(mut self, job: Job) -> Outcome {
        let lease = job.lease.clone();
        let lost = CancellationToken::new();
        let (progress, mut watch) = tokio::sync::watch::channel(Progress::default());
        crate::metrics::global().running(1);
        let hb = tokio::spawn(
            heartbeat(self.queue.clone(), lease.clone(), self.config.heartbeat_interval, lost.clone(), watch.clone())
                .instrument(tracing::Span::current()),
        );
        let started = std::time::Instant::now();
        // The job runs in its own task: a panic in it comes back as an error to
        // settle (a failed attempt with the panic's message), not as a dead task
        // whose heartbeat would keep the row `processing` for ever. Dropping the
        // handle (timeout, shutdown, lost lease) aborts the task, and with it
        // whisper through its abort flag.
        let pipeline = self.pipeline.clone();
        let owned = job.clone();
        let mut work = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            async move { pipeline.run(&owned, &progress).await }.instrument(tracing::Span::current()),
        ));
        // The time limit grows with the audio once its length is known.
        let ran = loop {
            let limit = self.config.job_limit(watch.borrow_and_update().audio_seconds);
            tokio::select! {
                r = &mut work => break match r {
                    Ok(r) => Ran::Finished(r),
                    Err(e) => Ran::Panicked(panic_message(e)),
                },
                _ = tokio::time::sleep_until((started + limit).into()) => break Ran::TimedOut(limit),
                Ok(()) = watch.changed() => continue,
                _ = self.cancel.cancelled() => break Ran::Cancelled,
                _ = lost.cancelled() => break Ran::LeaseLost,
            }
        };
        // The heartbeat goes on until the outcome is written: a job that finished
        // while the database was away keeps its lease (and its results, in memory)
        // until the write lands, instead of being rescued and transcribed again.
        self.lost = lost;
        let ms = |s: f64| (s * 1000.0).round() as u64;
        let (timings, audio_seconds) = match &ran {
            Ran::Finished(Ok(r)) => (r.timings, r.audio.as_ref().map(|a| a.duration_seconds)),
            _ => (Default::default(), watch.borrow().audio_seconds),
        };
        let last_stage = watch.borrow().stage.map_or("claimed", |s| s.as_str());
        let outcome = self.settle(ran, &job, &lease, started).await;
        hb.abort();
        crate::metrics::global().running(-1);
        crate::metrics::global().job(outcome.as_str());
        // One line per job with everything a dashboard or a grep needs.
        tracing::info!(
            outcome = outcome.as_str(),
            duration_ms = ms(started.elapsed().as_secs_f64()),
            fetch_ms = ms(timings.fetch_seconds),
            decode_ms = ms(timings.decode_seconds),
            vad_ms = ms(timings.vad_seconds),
            asr_ms = ms(timings.asr_seconds),
            diarize_ms = ms(timings.diarize_seconds),
            transcribe_ms = ms(timings.transcribe_seconds),
            analyze_ms = ms(timings.analyze_seconds),
            audio_seconds = audio_seconds.unwrap_or(0.0),
            stage = last_stage,
            "job finished"
        );
        outcome
    }

    async fn settle(&self, ran: Ran, job: &Job, lease: &Lease, started: std::time::Instant) -> Outcome {
        let lease = lease.clone();
        let max_attempts = job.max_attempts.unwrap_or(self.retry.max_attempts);
        match ran {
            Ran::Finished(Ok(results)) => match self.write(|| self.queue.complete(&lease, &results)).await {
                Some(Ok(())) => {
                    let seconds = started.elapsed().as_secs_f64();
                    let t = &results.timings;
                    let m = crate::metrics::global();
                    m.stage("fetch", t.fetch_seconds);
                    if results.audio.is_some() {
                        m.stage("decode", t.decode_seconds);
                    }
                    if results.transcript.is_some() {
                        m.stage("transcribe", t.transcribe_seconds);
                        m.stage("vad", t.vad_seconds);
                        m.stage("asr", t.asr_seconds);
                        m.stage("diarize", t.diarize_seconds);
                    }
                    if results.analysis.is_some() || results.analysis_error.is_some() {
                        m.stage("analyze", t.analyze_seconds);
                    }
                    if let Some(r) = &results.redaction {
                        m.stage("redact", t.redact_seconds);
                        m.redaction(r);
                    }
                    m.stage("write", (seconds - t.pipeline_seconds).max(0.0));
                    if let Some(a) = &results.audio {
                        m.audio(a.duration_seconds, t.transcribe_seconds);
                    }
                    // Everything that is not inference: fetch, decode, metrics and the
                    // completing transaction.
                    tracing::info!(
                        seconds,
                        fetch_seconds = t.fetch_seconds,
                        transcribe_seconds = t.transcribe_seconds,
                        analyze_seconds = t.analyze_seconds,
                        overhead_seconds = seconds - t.transcribe_seconds - t.analyze_seconds,
                        "completed"
                    );
                    self.faults.clear();
                    self.pipeline.after_commit(job, &results).await;
                    Outcome::Completed
                }
                Some(Err(QueueError::LeaseLost { .. })) => {
                    tracing::warn!("lease lost before completion; results discarded");
                    Outcome::LeaseLost
                }
                // The database refuses these results for what they are (a type
                // mismatch, a value too long, a constraint): the same write would be
                // refused again, so transcribing the call again cannot help. Fail the
                // row with the database's own words.
                Some(Err(e @ QueueError::Rejected(_))) => {
                    let msg = format!("storing the results failed: {e}");
                    self.failed(&lease, false, &msg, job.attempts, max_attempts).await
                }
                _ => Outcome::Abandoned,
            },
            Ran::Finished(Err(e)) if e.worker => {
                // Not the row's fault: hand it back without spending its attempt, and
                // pause claiming; the row is tried again once the pause is over.
                let pause = self.faults.trip(self.config.fault_backoff);
                tracing::error!(
                    error = %e,
                    pause_seconds = pause.as_secs_f64(),
                    "worker fault: the row is handed back untouched; claiming pauses"
                );
                let reason = e.to_string();
                match self.write(|| self.queue.defer(&lease, &reason, pause)).await {
                    Some(Ok(true)) => Outcome::Deferred,
                    Some(Ok(false)) => Outcome::LeaseLost,
                    _ => Outcome::Abandoned,
                }
            }
            Ran::Finished(Err(e)) if e.crashed => self.crashed(&lease, &e, job.attempts, max_attempts).await,
            Ran::Finished(Err(e)) => self.failed(&lease, e.transient, &e.to_string(), job.attempts, max_attempts).await,
            Ran::Panicked(msg) => {
                tracing::error!(panic = %msg, "the job panicked; counted as a failed attempt");
                let msg = format!("the worker panicked on this recording: {msg}");
                self.failed(&lease, true, &msg, job.attempts, max_attempts).await
            }
            Ran::TimedOut(limit) => {
                let msg = format!(
                    "timed out after {} (worker.job_timeout, or worker.job_timeout_ratio × the audio's length)",
                    humantime::format_duration(Duration::from_secs(limit.as_secs()))
                );
                self.failed(&lease, true, &msg, job.attempts, max_attempts).await
            }
            Ran::Cancelled => match self.write(|| self.queue.release(&lease)).await {
                Some(Ok(true)) => {
                    tracing::info!("handed back to pending at shutdown");
                    Outcome::Released
                }
                Some(Ok(false)) => Outcome::LeaseLost,
                _ => Outcome::Abandoned,
            },
            Ran::LeaseLost => {
                tracing::warn!("lease lost while running (rescued by another worker); abandoned");
                Outcome::LeaseLost
            }
        }
    }

    /// The inference process died on this recording: count the crash; at
    /// `retry.max_crashes` the row is failed, naming the stage, else retried.
    async fn crashed(
        &self,
        lease: &Lease,
        e: &crate::pipeline::StageError,
        attempt: u32,
        max_attempts: u32,
    ) -> Outcome {
        tracing::error!(stage = e.stage.as_str(), error = %e.message, "the inference process crashed; restarting it");
        let crashes = match self.write(|| self.queue.record_crash(lease)).await {
            Some(Ok(Some(n))) => n,
            Some(Ok(None)) => return Outcome::LeaseLost,
            _ => return Outcome::Abandoned,
        };
        if crashes >= self.retry.max_crashes {
            let msg = format!(
                "crashed the inference process {crashes} times, last in stage {}: {}",
                e.stage.as_str(),
                e.message
            );
            return self.failed(lease, false, &msg, attempt, max_attempts).await;
        }
        self.failed(lease, true, &e.to_string(), attempt, max_attempts).await
    }

    async fn failed(&self, lease: &Lease, transient: bool, msg: &str, attempt: u32, max_attempts: u32) -> Outcome {
        let (outcome, written) = if transient && attempt < max_attempts {
            let delay = backoff(attempt, self.retry.backoff_base, self.retry.backoff_max, &mut rand::thread_rng());
            tracing::warn!(error = %msg, retry_in_seconds = delay.as_secs_f64(), "transient failure; will retry");
            let text = format!("attempt {attempt} of {max_attempts}: {msg}");
            (Outcome::Retried, self.write(|| self.queue.retry(lease, &text, delay)).await)
        } else {
            let text = if transient { format!("gave up after {attempt} attempts: {msg}") } else { msg.to_string() };
            tracing::warn!(error = %text, "failed");
            (Outcome::Failed, self.write(|| self.queue.fail(lease, &text)).await)
        };
        match written {
            Some(Ok(true)) => outcome,
            Some(Ok(false)) => Outcome::LeaseLost,
            _ => Outcome::Abandoned,
        }
    }

    /// A final write, retried for as long as the database is away and the row is
    /// still ours: the results stay in memory (one job per slot) and are written
    /// once the database answers, so a finished call is never recomputed for a
    /// database outage. `None` when it never got through: the lease was lost (the
    /// row was rescued; the fenced write would be refused anyway) or shutdown ended
    /// the grace period; the row stays `processing` and the rescuer takes it back.
    async fn write<'a, T, F, Fut>(&'a self, f: F) -> Option<Result<T, QueueError>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, QueueError>> + 'a,
    {
        let mut delay = Duration::from_millis(200);
        let mut tries = 0u32;
        loop {
            match f().await {
                Err(e) if e.is_transient() => {
                    tries += 1;
                    if tries == 1 || tries.is_power_of_two() {
                        tracing::warn!(error = %e, tries, "writing the job's outcome failed; keeping it and retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.lost.cancelled() => {
                            tracing::error!("lease lost while the outcome waited for the database; the row will be redone");
                            return None;
                        }
                        _ = self.cancel.cancelled() => {
                            tracing::error!("shutdown while the outcome waited for the database; the rescuer will requeue it");
                            return None;
                        }
                    }
                    delay = (delay * 2).min(WRITE_RETRY_MAX);
                }
                other => return Some(other),
            }
        }
    }
}

/// The longest wait between two tries of a final write while the database is away:
/// short, so a finished job is written within seconds of the database's return.
const WRITE_RETRY_MAX: Duration = Duration::from_secs(2);

/// Refresh the lease every `every`, and record each stage the job enters
/// (`processing_stage`) as it enters it; cancel `lost` when the row is no
/// longer ours.
async fn heartbeat(
    queue: Arc<dyn Queue>,
    lease: Lease,
    every: Duration,
    lost: CancellationToken,
    mut progress: tokio::sync::watch::Receiver<Progress>,
) {
    let mut written: Option<Stage> = None;
    let mut watching = true;
    loop {
        let stage = tokio::select! {
            _ = tokio::time::sleep(every) => None,
            changed = progress.changed(), if watching => {
                watching = changed.is_ok();
                progress.borrow_and_update().stage.filter(|s| Some(*s) != written)
            }
        };
        let beat = match stage {
            Some(s) => queue.set_stage(&lease, s.as_str()).await.inspect(|_| written = Some(s)),
            None => queue.heartbeat(&lease).await,
        };
        match beat {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; will try again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[tokio::test]
    async fn a_panicking_job_task_yields_its_message() {
        let e = tokio::spawn(async { panic!("index out of bounds: the len is 3") }).await.unwrap_err();
        assert_eq!(panic_message(e), "index out of bounds: the len is 3");
        let e = tokio::spawn(async { std::panic::panic_any(format!("row {}", 7)) }).await.unwrap_err();
        assert_eq!(panic_message(e), "row 7");
    }

    #[test]
    fn the_fault_gate_doubles_its_pause_and_a_success_clears_it() {
        let g = FaultGate::default();
        assert_eq!(g.wait(), None);
        assert_eq!(g.trip(Duration::from_secs(30)), Duration::from_secs(30));
        assert_eq!(g.trip(Duration::from_secs(30)), Duration::from_secs(60));
        for _ in 0..10 {
            g.trip(Duration::from_secs(30));
        }
        assert_eq!(g.trip(Duration::from_secs(30)), FAULT_BACKOFF_MAX);
        assert!(g.wait().is_some_and(|w| w > Duration::from_secs(290)));
        g.clear();
        assert_eq!(g.wait(), None);
        assert_eq!(g.trip(Duration::from_secs(30)), Duration::from_secs(30), "a new fault starts over");
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        for attempt in 1..=10u32 {
            let full = (base * 2u32.pow(attempt - 1)).min(max);
            for _ in 0..50 {
                let d = backoff(attempt, base, max, &mut rng);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} outside [{:?}, {full:?}]", full / 2);
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(3, base, max, &mut rng)).collect();
        assert!(spread.len() > 10, "no jitter");
    }
}
