//! Prometheus metrics and health endpoints, on an optional HTTP listener
//! (`metrics.listen`, off by default; `127.0.0.1:9464` keeps it on the host).
//!
//! - `/metrics`: the Prometheus text format, encoded by `prometheus-client`;
//! - `/healthz`: 200 while the process serves requests;
//! - `/readyz`: 200 when the database answers, no worker fault pauses claiming
//!   and the LLM process (when configured) is up; else 503 with the reasons,
//!   one per line.
//!
//! The counters live in one process-wide [`Metrics`] ([`global`]): the worker,
//! the pipeline and the inference processes record into it without being
//! handed a registry. Queue depth is sampled from the database at each scrape.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::queue::Queue;

type Labels = Vec<(&'static str, String)>;

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_string())]
}

fn seconds_histogram() -> Histogram {
    // 50 ms … ~7 h.
    Histogram::new(exponential_buckets(0.05, 2.0, 20))
}

/// Every metric the worker exports.
pub struct Metrics {
    registry: Registry,
    jobs: Family<Labels, Counter>,
    stage_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    audio_seconds: Counter<f64, AtomicU64>,
    realtime_factor: Histogram,
    running_jobs: Gauge,
    worker_fault: Gauge,
    rescued: Family<Labels, Counter>,
    process_starts: Family<Labels, Counter>,
    model_load_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    queue_rows: Family<Labels, Gauge>,
    oldest_pending_seconds: Gauge<f64, AtomicU64>,
    scrape_errors: Counter,
    pii_entities: Family<Labels, Counter>,
    cleaned_audio_failures: Counter,
    findings_dropped: Counter,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("callscribe");
        let m = Metrics {
            registry: Registry::default(),
            jobs: Family::default(),
            stage_seconds: Family::new_with_constructor(seconds_histogram),
            audio_seconds: Counter::default(),
            realtime_factor: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            running_jobs: Gauge::default(),
            worker_fault: Gauge::default(),
            rescued: Family::default(),
            process_starts: Family::default(),
            model_load_seconds: Family::default(),
            queue_rows: Family::default(),
            oldest_pending_seconds: Gauge::default(),
            scrape_errors: Counter::default(),
            pii_entities: Family::default(),
            cleaned_audio_failures: Counter::default(),
            findings_dropped: Counter::default(),
        };
        registry.register(
            "jobs",
            "Jobs by outcome: claimed, completed, failed, retried, released, deferred, lease_lost, abandoned",
            m.jobs.clone(),
        );
        registry.register(
            "stage_seconds",
            "Time spent per stage: fetch, decode, vad, asr, diarize, redact, analyze, write; transcribe is decode to diarize as one",
            m.stage_seconds.clone(),
        );
        registry.register("audio_seconds", "Seconds of audio in completed jobs", m.audio_seconds.clone());
        registry.register(
            "realtime_factor",
            "Transcription time divided by the audio's length, per completed job",
            m.realtime_factor.clone(),
        );
        registry.register("running_jobs", "Jobs running now", m.running_jobs.clone());
        registry.register(
            "worker_fault",
            "1 while a fault of the worker itself pauses claiming",
            m.worker_fault.clone(),
        );
        registry.register(
            "rescued_rows",
            "Rows with a stale heartbeat taken back by this worker's rescuer",
            m.rescued.clone(),
        );
        registry.register(
            "process_starts",
            "Starts of the supervised processes (inference, llm); more than one means restarts",
            m.process_starts.clone(),
        );
        registry.register(
            "model_load_seconds",
            "Time the last start of each process took to load its model",
            m.model_load_seconds.clone(),
        );
        registry.register("queue_rows", "Rows per processing_status, sampled at scrape", m.queue_rows.clone());
        registry.register(
            "oldest_pending_seconds",
            "Age of the oldest pending row, sampled at scrape",
            m.oldest_pending_seconds.clone(),
        );
        registry.register("scrape_errors", "Scrapes whose queue sample failed", m.scrape_errors.clone());
        registry.register(
            "pii_entities",
            "PII spans redacted in committed jobs, by type (AADHAAR, PHONE, UK_NINO, …)",
            m.pii_entities.clone(),
        );
        registry.register(
            "cleaned_audio_failures",
            "Redacting jobs whose cleaned audio copy could not be written or stored (the original was kept)",
            m.cleaned_audio_failures.clone(),
        );
        registry.register(
            "analysis_findings_dropped",
            "Analysis findings dropped because their quote is not in the segments they cite",
            m.findings_dropped.clone(),
        );
        registry.register("build", "The build", Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_string())]));
        Metrics { registry, ..m }
    }

    /// Findings an analysis dropped for want of evidence.
    pub fn findings_dropped(&self, n: u64) {
        self.findings_dropped.inc_by(n);
    }

    /// What redaction did in one committed job.
    pub fn redaction(&self, r: &crate::queue::RedactionOutcome) {
        for item in &r.items {
            self.pii_entities.get_or_create(&label("type", item.kind.name())).inc();
        }
        if r.audio_error.is_some() {
            self.cleaned_audio_failures.inc();
        }
    }

    pub fn job(&self, outcome: &str) {
        self.jobs.get_or_create(&label("outcome", outcome)).inc();
    }

    pub fn stage(&self, stage: &str, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.stage_seconds.get_or_create(&label("stage", stage)).observe(seconds);
        }
    }

    /// A completed job's audio length and transcription time.
    pub fn audio(&self, audio_seconds: f64, transcribe_seconds: f64) {
        if audio_seconds.is_finite() && audio_seconds > 0.0 {
            self.audio_seconds.inc_by(audio_seconds);
            if transcribe_seconds > 0.0 {
                self.realtime_factor.observe(transcribe_seconds / audio_seconds);
            }
        }
    }

    pub fn running(&self, delta: i64) {
        self.running_jobs.inc_by(delta);
    }

    pub fn fault(&self, active: bool) {
        self.worker_fault.set(i64::from(active));
    }

    pub fn rescued(&self, requeued: u64, failed: u64) {
        self.rescued.get_or_create(&label("to", "pending")).inc_by(requeued);
        self.rescued.get_or_create(&label("to", "failed")).inc_by(failed);
    }

    /// A supervised process (`inference`, `llm`) started and loaded its model.
    pub fn process_started(&self, process: &str, load_seconds: f64) {
        self.process_starts.get_or_create(&label("process", process)).inc();
        self.model_load_seconds.get_or_create(&label("process", process)).set(load_seconds);
    }

    /// The text exposition, with the queue sampled first.
    pub async fn render(&self, queue: Option<&dyn Queue>) -> String {
        if let Some(q) = queue {
            match tokio::time::timeout(Duration::from_secs(2), q.stats()).await {
                Ok(Ok(s)) => {
                    for (status, n) in s.by_status() {
                        self.queue_rows.get_or_create(&label("status", status)).set(n as i64);
                    }
                    self.oldest_pending_seconds.set(s.oldest_pending_age_seconds.unwrap_or(0.0));
                }
                _ => {
                    self.scrape_errors.inc();
                }
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// What the endpoints read.
#[derive(Clone)]
pub struct State {
    pub queue: Arc<dyn Queue>,
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    pub faults: Arc<crate::worker::FaultGate>,
}

/// Why the worker is not ready; empty when it is.
pub async fn unready(state: &State) -> Vec<String> {
    let mut problems = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), state.queue.stats()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("database: {e}")),
        Err(_) => problems.push("database: no answer within 2 s".into()),
    }
    if let Some(wait) = state.faults.wait() {
        problems.push(format!("a worker fault pauses claiming for {} s more", wait.as_secs()));
    }
    if let Some(p) = state.pipeline.llm_problem().await {
        problems.push(p);
    }
    problems
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    tracing::info!(addr = %listener.local_addr()?, "metrics and health endpoints listening");
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|axum::extract::State(s): axum::extract::State<State>| async move {
                (
                    [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    global().render(Some(s.queue.as_ref())).await,
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|axum::extract::State(s): axum::extract::State<State>| async move {
                let problems = unready(&s).await;
                if problems.is_empty() {
                    (StatusCode::OK, "ready\n".to_string())
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
                }
            }),
        )
        .with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
