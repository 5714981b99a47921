//! The database is the queue. One trait, [`Queue`], one module per backend:
//! [`postgres`] (a `MATERIALIZED` CTE `SELECT … FOR UPDATE SKIP LOCKED LIMIT n`
//! feeding one `UPDATE … RETURNING`), [`mysql`] (MariaDB ≥ 10.6 / MySQL ≥ 8:
//! `SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED` then `UPDATE` in one short
//! transaction) and [`sqlite`] (one `UPDATE … WHERE id IN (SELECT … LIMIT n)
//! RETURNING`, serialised by SQLite's write lock). [`maintenance`] holds the
//! rescuer, [`schema`] the tables.
//!
//! The backends differ only where SQL must: the clock, placeholders, casts,
//! intervals and the claim. Everything else is written once, here: the SQL text
//! is built from a [`Dialect`], the values travel as [`Val`]s, and the method
//! bodies are one macro ([`common_queue_methods`]) expanded in each backend.
//!
//! Times come from the database's clock, in UTC, so workers with skewed clocks
//! still agree on what is stale. No method holds a transaction or a pooled
//! connection beyond its own call: the minutes a job runs are spent outside the
//! database.

pub mod job;
pub mod maintenance;
pub mod mysql;
pub mod postgres;
pub mod schema;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::analyze::CallContext;
pub use job::{
    clip_error, AnalysisSelector, ErrorCount, Job, JobResults, JobState, Lease, NewRecording, RedactionOutcome,
    RescueCounts, Selector, Stats,
};

use crate::config::{Backend, DatabaseConfig};
use crate::contract;

/// Errors of the queue, classified where they are born: a dead or busy database
/// is transient (the worker retries later); a statement the database refuses
/// for the data in it (a value too long, a type mismatch, a constraint) will be
/// refused again, so the row is failed with the database's words.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("the database refused the results: {0}")]
    Rejected(String),
    #[error("lease lost: row {id} is no longer held by this worker for attempt {attempt}")]
    LeaseLost { id: i64, attempt: u32 },
    #[error("schema: {0}")]
    Schema(String),
    #[error("no answer from the database within {0:?} (database.connect_timeout): is the host right and reachable?")]
    NoAnswer(Duration),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if is_deterministic(d.code().as_deref()) => {
                QueueError::Rejected(d.message().to_string())
            }
            _ => QueueError::Database(e),
        }
    }
}

/// SQLSTATE classes a retry cannot fix: 22 data exception (value too long, out of
/// range, invalid JSON), 23 integrity constraint, 42 syntax or access rule
/// (undefined column, type mismatch such as `json` vs `jsonb`). SQLite reports no
/// SQLSTATE; its constraint errors carry codes 19xx/275/…: `2067`, `1299`, `787`, `275`.
fn is_deterministic(code: Option<&str>) -> bool {
    match code {
        Some(c) if c.len() == 5 => matches!(&c[..2], "22" | "23" | "42"),
        Some(c) => matches!(c, "19" | "275" | "787" | "1299" | "1555" | "2067" | "531"),
        None => false,
    }
}

impl QueueError {
    /// Whether the same call may succeed later (a dead or busy database).
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Database(_) | QueueError::NoAnswer(_))
    }
}

/// One direct connection before a pool is made: a refused port, a wrong password
/// or a missing database is reported at once in the driver's own words, where the
/// pool would retry until its timeout and then say only "pool timed out".
pub(crate) async fn probe_connection<O>(opts: &O, timeout: Duration) -> Result<(), QueueError>
where
    O: sqlx::ConnectOptions,
    O::Connection: Sized,
{
    use sqlx::Connection;
    match tokio::time::timeout(timeout, opts.connect()).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(QueueError::NoAnswer(timeout)),
    }
}

/// A row as admins and tests see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordingView {
    pub id: i64,
    pub apex_id: Option<String>,
    pub r2_path: String,
    pub r2_bucket: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub worker_id: Option<String>,
    pub processing_error: Option<String>,
    /// `duration_seconds`: the app's, or the measured one when the app left it NULL.
    pub duration_seconds: Option<i64>,
    pub deleted: bool,
    /// Number of `ai_call_analysis` rows for this recording (0 or 1).
    pub analyses: i64,
    /// `processing_stage`: where its holder is (or was when it died).
    pub stage: Option<String>,
    pub crashes: i64,
}

/// A recording's stored results, as the Laravel app would read them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoredResults {
    pub transcript: Option<StoredTranscript>,
    pub speaker_metrics: Option<serde_json::Value>,
    pub audio_quality: Option<serde_json::Value>,
    pub summary: Option<String>,
    pub sentiment_score: Option<f64>,
    pub sentiment_label: Option<String>,
    pub quality_score: Option<f64>,
    pub quality_zone: Option<String>,
    pub key_topics: Option<serde_json::Value>,
    pub action_items: Option<serde_json::Value>,
    pub compliance_flags: Option<serde_json::Value>,
    pub score_impacts: Option<serde_json::Value>,
    pub analysis_config: Option<serde_json::Value>,
    pub outcome: Option<String>,
    pub engine: Option<String>,
    pub model_used: Option<String>,
    /// `completed`, `failed` or `skipped`.
    pub analysis_status: Option<String>,
    pub analysis_error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredTranscript {
    pub full_transcript: String,
    pub language_detected: Option<String>,
    pub language_probability: Option<f64>,
    pub confidence_score: Option<f64>,
    pub model_used: Option<String>,
    pub details: Option<serde_json::Value>,
    /// From the JSON `segments` column.
    pub segments: Vec<StoredSegment>,
    /// Rows in `ai_call_segments` (0 where the table does not exist).
    pub segment_rows: i64,
}

impl StoredTranscript {
    /// The transcript again, from the JSON `segments` column: what `reanalyze`
    /// analyses without running whisper.
    pub fn to_transcript(&self) -> crate::asr::Transcript {
        let segments = self
            .segments
            .iter()
            .map(|s| crate::asr::Segment {
                start: s.start,
                end: s.end,
                text: s.text.clone(),
                words: s
                    .words
                    .as_array()
                    .map(|ws| {
                        ws.iter()
                            .map(|w| crate::asr::Word {
                                word: w["word"].as_str().unwrap_or_default().to_string(),
                                start: w["start"].as_f64().unwrap_or(s.start),
                                end: w["end"].as_f64().unwrap_or(s.end),
                                probability: w["confidence"].as_f64().unwrap_or(0.0),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                speaker: s.speaker.clone(),
                ..Default::default()
            })
            .collect();
        crate::asr::Transcript {
            language: self.language_detected.clone().unwrap_or_default(),
            language_probability: self.language_probability.unwrap_or(0.0),
            segments,
            model: self.model_used.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredSegment {
    #[serde(rename = "segment_id")]
    pub index: i64,
    pub speaker: Option<String>,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: serde_json::Value,
}

pub(crate) fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// The queue operations every backend provides.
#[async_trait]
pub trait Queue: Send + Sync {
    fn backend(&self) -> Backend;

    /// Create the app's tables where missing, add the worker's columns and
    /// indexes where missing; returns what it did, one line per change.
    async fn migrate(&self) -> Result<Vec<String>, QueueError>;

    /// `table.column` names the worker needs that the database lacks.
    async fn missing_columns(&self) -> Result<Vec<String>, QueueError>;

    /// Columns whose type cannot hold what the worker writes (`doctor`).
    async fn type_problems(&self) -> Result<Vec<String>, QueueError> {
        Ok(Vec::new())
    }

    /// Why the claim cannot read just the rows it takes (an index the schema
    /// lacks), when the backend can tell; `None` when it is served well.
    async fn claim_index_problem(&self) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    /// A time-zone setting that would make the app read our UTC times shifted
    /// (MySQL/MariaDB server zone other than UTC); `None` when all is UTC.
    async fn time_zone_problem(&self) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    /// Claim up to `n` claimable rows for `worker_id`, bumping their attempts.
    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError>;

    /// Refresh the heartbeat; `false` when the row is no longer held by this lease.
    async fn heartbeat(&self, lease: &Lease) -> Result<bool, QueueError>;

    /// Write results and mark `completed` in one transaction, only if still held.
    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError>;

    /// Back to `pending` with `processing_error`, claimable again after `delay`.
    async fn retry(&self, lease: &Lease, error: &str, delay: Duration) -> Result<bool, QueueError>;

    /// `failed` for good with a readable `processing_error`.
    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, QueueError>;

    /// Hand the row back to `pending` without spending the attempt (shutdown).
    async fn release(&self, lease: &Lease) -> Result<bool, QueueError>;

    /// The worker's own fault: back to `pending` without spending the attempt,
    /// with the reason in `processing_error` (prefixed `worker fault`), claimable
    /// again after `delay`.
    async fn defer(&self, lease: &Lease, reason: &str, delay: Duration) -> Result<bool, QueueError>;

    /// Rows `processing` whose heartbeat is older than `stale_after`: back to
    /// `pending` with one more crash counted, or `failed` when their attempts or
    /// crashes are spent.
    async fn rescue_stale(
        &self,
        stale_after: Duration,
        default_max_attempts: u32,
        max_crashes: u32,
    ) -> Result<RescueCounts, QueueError>;

    /// Record the stage the holder has entered (`processing_stage`, with a
    /// heartbeat); `false` when the row is no longer held by this lease.
    async fn set_stage(&self, lease: &Lease, stage: &str) -> Result<bool, QueueError>;

    /// Count one crash of this row's processing (the inference process died on
    /// it); returns the row's crash count, `None` when the lease is lost.
    async fn record_crash(&self, lease: &Lease) -> Result<Option<u32>, QueueError>;

    /// `failed` rows (or the one with `id`) back to `pending` with fresh attempts.
    async fn requeue_failed(&self, id: Option<i64>) -> Result<u64, QueueError>;

    /// Selected rows that are not being processed back to `pending` with fresh
    /// attempts; their results are replaced when they complete again.
    async fn reprocess(&self, selector: &Selector) -> Result<u64, QueueError>;

    async fn stats(&self) -> Result<Stats, QueueError>;

    /// Completed rows with a transcript that `reanalyze` should analyse again.
    async fn reanalysis_targets(&self, selector: &AnalysisSelector) -> Result<Vec<i64>, QueueError>;

    /// Write a fresh analysis (or its failure) for recording `id`, replacing the
    /// analysis columns of its `ai_call_analysis` row (made if missing); the
    /// transcript, speaker metrics and audio figures are left as they are.
    async fn store_analysis(
        &self,
        id: i64,
        analysis: Result<&crate::analyze::Analysis, &str>,
        transcript: &crate::asr::Transcript,
    ) -> Result<(), QueueError>;

    /// Insert a `pending` row as the app's `CallRecordingService` does; returns its id.
    async fn enqueue(&self, rec: &NewRecording) -> Result<i64, QueueError>;

    /// The active rows of the shared `ai_configs` table (the analysis settings'
    /// tiers; see [`crate::analyze::profile`]); empty where there is no such
    /// table. A row that cannot be read is skipped with a warning.
    async fn analysis_layers(&self) -> Result<Vec<crate::analyze::TableLayer>, QueueError>;

    /// The context columns of recording `id` (for `reanalyze`).
    async fn call_context(&self, id: i64) -> Result<CallContext, QueueError>;

    /// Rows in id order, at most `limit`; only row `id` when given.
    async fn list(&self, id: Option<i64>, limit: u32) -> Result<Vec<RecordingView>, QueueError>;

    /// The result rows of recording `id`.
    async fn results(&self, id: i64) -> Result<StoredResults, QueueError>;

    async fn close(&self);
}

/// Connect to the configured database.
pub async fn connect(cfg: &DatabaseConfig) -> Result<Arc<dyn Queue>, QueueError> {
    Ok(match cfg.backend {
        Backend::Postgres => Arc::new(postgres::PgQueue::connect(cfg).await?),
        Backend::Mysql => Arc::new(mysql::MySqlQueue::connect(cfg).await?),
        Backend::Sqlite => Arc::new(sqlite::SqliteQueue::connect(cfg).await?),
    })
}

/// A value bound to a statement, in placeholder order.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
}

/// How one backend spells what SQL does not standardise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    pub backend: Backend,
}

impl Dialect {
    /// The database's clock in UTC.
    pub fn now(self) -> &'static str {
        match self.backend {
            Backend::Postgres => "(now() AT TIME ZONE 'UTC')",
            Backend::Mysql => "UTC_TIMESTAMP(6)",
            Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        }
    }

    /// The `n`-th placeholder (1-based).
    pub fn p(self, n: usize) -> String {
        match self.backend {
            Backend::Postgres => format!("${n}"),
            _ => "?".into(),
        }
    }

    /// A placeholder holding JSON text for a JSON column (`json` or `jsonb`: an
    /// assignment cast takes `json` into either).
    pub fn json(self, n: usize) -> String {
        match self.backend {
            Backend::Postgres => format!("${n}::json"),
            _ => "?".into(),
        }
    }

    /// `expr` read as a 64-bit integer.
    pub fn int(self, expr: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("({expr})::int8"),
            Backend::Mysql => format!("CAST({expr} AS SIGNED)"),
            Backend::Sqlite => format!("CAST({expr} AS INTEGER)"),
        }
    }

    /// `expr` read as a double.
    pub fn float(self, expr: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("({expr})::float8"),
            Backend::Mysql => format!("CAST({expr} AS DOUBLE)"),
            Backend::Sqlite => format!("CAST({expr} AS REAL)"),
        }
    }

    /// `expr` read as text (JSON columns, enums, varchars of any width).
    pub fn text(self, expr: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("({expr})::text"),
            Backend::Mysql => format!("CAST({expr} AS CHAR)"),
            Backend::Sqlite => expr.to_string(),
        }
    }

    /// The clock shifted by the duration bound at placeholder `n` (see [`Dialect::span`]).
    pub fn shifted(self, n: usize, later: bool) -> String {
        let sign = if later { "+" } else { "-" };
        match self.backend {
            Backend::Postgres => format!("({} {sign} make_interval(secs => ${n}::float8))", self.now()),
            Backend::Mysql => format!("({} {sign} INTERVAL ? MICROSECOND)", self.now()),
            Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now', ?)".to_string(),
        }
    }

    /// The value for [`Dialect::shifted`].
    pub fn span(self, d: Duration, later: bool) -> Val {
        match self.backend {
            Backend::Postgres => Val::Float(Some(d.as_secs_f64())),
            Backend::Mysql => Val::Int(Some(micros(d))),
            Backend::Sqlite => {
                let s = d.as_secs_f64();
                Val::Text(Some(format!("{:+.3} seconds", if later { s } else { -s })))
            }
        }
    }

    /// String concatenation.
    pub fn concat(self, parts: &[&str]) -> String {
        match self.backend {
            Backend::Mysql => format!("CONCAT({})", parts.join(", ")),
            _ => parts.join(" || "),
        }
    }

    /// The larger of two integers.
    pub fn max0(self, expr: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("MAX({expr}, 0)"),
            _ => format!("GREATEST({expr}, 0)"),
        }
    }
}

/// The attempt number a claim gives a row: 1 when the row is fresh — never
/// started, or set back to `pending` by the app's own reprocess, which nulls
/// `processing_started_at` and `processing_error` but knows nothing of
/// `attempts` — else one more than before. A worker's retry keeps
/// `processing_started_at` and writes `processing_error`, so it counts on.
pub(crate) const NEXT_ATTEMPT: &str =
    "CASE WHEN processing_started_at IS NULL AND processing_error IS NULL THEN 1 ELSE attempts + 1 END";

/// `crashes` at a claim, read before the claim changes `processing_started_at`:
/// 0 on a row the app set back to `pending` (as [`NEXT_ATTEMPT`] tells), else kept.
pub(crate) const CRASHES_AT_CLAIM: &str =
    "CASE WHEN processing_started_at IS NULL AND processing_error IS NULL THEN 0 ELSE crashes END";

/// The rows a claim may take: `queued` (the app's priority reprocess) or
/// `pending`, not soft-deleted, whose retry time has come.
pub(crate) fn claimable(d: Dialect) -> String {
    format!(
        "processing_status IN ('queued', 'pending') AND deleted_at IS NULL \
         AND (available_at IS NULL OR available_at <= {})",
        d.now()
    )
}

/// The claim order: `queued` before `pending` ('queued' > 'pending'), then
/// priority, then age. The claim index has exactly this order.
pub(crate) const CLAIM_ORDER: &str = "processing_status DESC, priority DESC, id";

/// How `processing_error` starts on a row handed back for the worker's own fault.
pub const WORKER_FAULT_PREFIX: &str = "worker fault";

/// SQL text and values of the statements every backend shares.
pub(crate) mod sql {
    use super::*;

    /// `UPDATE … SET {set} WHERE` held by `lease`; `pre` are the values of `set`'s
    /// placeholders (numbered from 1), the lease's follow.
    pub fn set_held(d: Dialect, set: &str, pre: Vec<Val>, lease: &Lease) -> (String, Vec<Val>) {
        let k = pre.len();
        let sql = format!(
            "UPDATE {} SET {set}, updated_at = {} \
             WHERE id = {} AND processing_status = 'processing' AND lease_token = {}",
            schema::RECORDINGS,
            d.now(),
            d.p(k + 1),
            d.p(k + 2)
        );
        let mut vals = pre;
        vals.extend([Val::Int(Some(lease.id)), Val::Text(Some(lease.token.clone()))]);
        (sql, vals)
    }

    pub fn heartbeat(d: Dialect, lease: &Lease) -> (String, Vec<Val>) {
        set_held(d, &format!("heartbeat_at = {}", d.now()), vec![], lease)
    }

    /// The stage the holder has entered (also a heartbeat).
    pub fn stage(d: Dialect, lease: &Lease, stage: &str) -> (String, Vec<Val>) {
        let set = format!("heartbeat_at = {}, processing_stage = {}", d.now(), d.p(1));
        set_held(d, &set, vec![Val::Text(Some(stage.to_string()))], lease)
    }

    /// One more crash of the row's processing, counted by its holder.
    pub fn crash(d: Dialect, lease: &Lease) -> (String, Vec<Val>) {
        set_held(d, "crashes = crashes + 1", vec![], lease)
    }

    pub fn crashes(d: Dialect, id: i64) -> (String, Vec<Val>) {
        (
            format!("SELECT {} FROM {} WHERE id = {}", d.int("crashes"), schema::RECORDINGS, d.p(1)),
            vec![Val::Int(Some(id))],
        )
    }

    pub fn retry(d: Dialect, lease: &Lease, error: &str, delay: Duration) -> (String, Vec<Val>) {
        let set = format!(
            "processing_status = 'pending', heartbeat_at = NULL, lease_token = NULL, processing_error = {}, \
             available_at = {}",
            d.p(1),
            d.shifted(2, true)
        );
        set_held(d, &set, vec![Val::Text(Some(clip_error(error))), d.span(delay, true)], lease)
    }

    pub fn fail(d: Dialect, lease: &Lease, error: &str) -> (String, Vec<Val>) {
        let set = format!(
            "processing_status = 'failed', heartbeat_at = NULL, lease_token = NULL, processing_error = {}, \
             processing_completed_at = {}",
            d.p(1),
            d.now()
        );
        set_held(d, &set, vec![Val::Text(Some(clip_error(error)))], lease)
    }

    /// Back to `pending` without spending the attempt. `attempts` is set before
    /// `processing_started_at` (MySQL assigns left to right).
    pub fn release(d: Dialect, lease: &Lease) -> (String, Vec<Val>) {
        let set = format!(
            "processing_status = 'pending', heartbeat_at = NULL, lease_token = NULL, attempts = {}, \
             processing_started_at = NULL",
            d.max0("attempts - 1")
        );
        set_held(d, &set, vec![], lease)
    }

    /// Back to `pending`, the attempt not spent (`attempts` is set before
    /// anything it reads is changed: MySQL assigns left to right).
    pub fn defer(d: Dialect, lease: &Lease, reason: &str, delay: Duration) -> (String, Vec<Val>) {
        let set = format!(
            "attempts = {}, processing_status = 'pending', heartbeat_at = NULL, lease_token = NULL, \
             processing_error = {}, available_at = {}",
            d.max0("attempts - 1"),
            d.p(1),
            d.shifted(2, true)
        );
        let reason = format!("{WORKER_FAULT_PREFIX} (attempt not counted): {reason}");
        set_held(d, &set, vec![Val::Text(Some(clip_error(&reason))), d.span(delay, true)], lease)
    }

    /// The two rescuer statements: fail the rows whose attempts or crashes are
    /// spent, then requeue the rest. A rescued row counts a crash (its worker died
    /// or hung in `processing_stage`): a recording that kills every worker that
    /// takes it is failed after `max_crashes`, naming the stage.
    pub fn rescue(d: Dialect, stale_after: Duration, default_max: u32, max_crashes: u32) -> [(String, Vec<Val>); 2] {
        let stale = |n: usize| {
            format!(
                "processing_status = 'processing' \
                 AND COALESCE(heartbeat_at, processing_started_at, updated_at) < {}",
                d.shifted(n, false)
            )
        };
        let attempts_text = d.text("attempts");
        let crashes_text = d.text("(crashes + 1)");
        let max_text = d.text(&format!("COALESCE(max_attempts, {})", d.p(1)));
        let worker = "COALESCE(worker_id, '?')";
        let stage = "COALESCE(processing_stage, '?')";
        // `processing_error` is assigned before `crashes` (MySQL assigns left to
        // right), so both dialects read the old count there.
        let failed = format!(
            "UPDATE {} SET processing_status = 'failed', heartbeat_at = NULL, processing_completed_at = {now}, \
                 updated_at = {now}, processing_error = {msg}, crashes = crashes + 1 \
             WHERE {stale} AND (attempts >= COALESCE(max_attempts, {max2}) OR crashes + 1 >= {maxc})",
            schema::RECORDINGS,
            now = d.now(),
            msg = d.concat(&[
                "'abandoned: the recording crashed or stalled its worker '",
                &crashes_text,
                "' time(s), last in stage '",
                stage,
                "' (worker '",
                worker,
                "' stopped heartbeating during attempt '",
                &attempts_text,
                "' of '",
                &max_text,
                "')'"
            ]),
            stale = stale(2),
            max2 = d.p(3),
            maxc = d.p(4),
        );
        let requeued = format!(
            "UPDATE {} SET processing_status = 'pending', heartbeat_at = NULL, available_at = {now}, \
                 updated_at = {now}, processing_error = {msg}, crashes = crashes + 1 \
             WHERE {stale} AND attempts < COALESCE(max_attempts, {max}) AND crashes + 1 < {maxc}",
            schema::RECORDINGS,
            now = d.now(),
            msg = d.concat(&[
                "'rescued: worker '",
                worker,
                "' stopped heartbeating in stage '",
                stage,
                "' during attempt '",
                &attempts_text
            ]),
            stale = stale(1),
            max = d.p(2),
            maxc = d.p(3),
        );
        let m = Val::Int(Some(default_max as i64));
        let c = Val::Int(Some(max_crashes as i64));
        let span = d.span(stale_after, false);
        [(failed, vec![m.clone(), span.clone(), m.clone(), c.clone()]), (requeued, vec![span, m, c])]
    }

    pub fn requeue_failed(d: Dialect, id: Option<i64>) -> (String, Vec<Val>) {
        let (cond, vals) = match id {
            Some(id) => (format!(" AND id = {}", d.p(1)), vec![Val::Int(Some(id))]),
            None => (String::new(), vec![]),
        };
        (
            format!(
                "UPDATE {} SET processing_status = 'pending', attempts = 0, crashes = 0, available_at = NULL, \
                     processing_error = NULL, processing_completed_at = NULL, updated_at = {} \
                 WHERE processing_status = 'failed' AND deleted_at IS NULL{cond}",
                schema::RECORDINGS,
                d.now()
            ),
            vals,
        )
    }

    pub fn reprocess(d: Dialect, selector: &Selector) -> (String, Vec<Val>) {
        let (cond, val) = match selector {
            Selector::Id(id) => ("id", Val::Int(Some(*id))),
            Selector::ApexId(a) => ("apex_id", Val::Text(Some(a.clone()))),
        };
        (
            format!(
                "UPDATE {} SET processing_status = 'pending', attempts = 0, crashes = 0, available_at = NULL, \
                     processing_error = NULL, processing_started_at = NULL, processing_completed_at = NULL, \
                     updated_at = {} \
                 WHERE {cond} = {} AND processing_status <> 'processing' AND deleted_at IS NULL",
                schema::RECORDINGS,
                d.now(),
                d.p(1)
            ),
            vec![val],
        )
    }

    pub fn status_counts(d: Dialect) -> String {
        format!(
            "SELECT {}, COUNT(*) FROM {} WHERE deleted_at IS NULL GROUP BY processing_status",
            d.text("processing_status"),
            schema::RECORDINGS
        )
    }

    pub fn stats_figures(d: Dialect) -> (String, Vec<Val>) {
        let r = schema::RECORDINGS;
        let now = d.now();
        let age = match d.backend {
            Backend::Postgres => format!("EXTRACT(EPOCH FROM ({now} - MIN(COALESCE(created_at, updated_at))))::float8"),
            Backend::Mysql => {
                format!(
                    "CAST(TIMESTAMPDIFF(MICROSECOND, MIN(COALESCE(created_at, updated_at)), {now}) AS DOUBLE) / 1e6"
                )
            }
            Backend::Sqlite => {
                format!("(julianday({now}) - julianday(MIN(COALESCE(created_at, updated_at)))) * 86400.0")
            }
        };
        let hour = d.shifted(1, false);
        let hour2 = d.shifted(2, false);
        let span = d.span(Duration::from_secs(3600), false);
        (
            format!(
                "SELECT \
                   (SELECT {c} FROM {r} WHERE processing_status IN ('queued', 'pending') AND available_at > {now} \
                      AND deleted_at IS NULL), \
                   (SELECT {age} FROM {r} WHERE processing_status IN ('queued', 'pending') AND deleted_at IS NULL), \
                   (SELECT {c} FROM {r} WHERE processing_status = 'completed' AND processing_completed_at >= {hour}), \
                   (SELECT {c} FROM {r} WHERE processing_status = 'failed' AND updated_at >= {hour2}), \
                   (SELECT {c} FROM {r} WHERE processing_status = 'pending' AND processing_error LIKE '{WORKER_FAULT_PREFIX}%')",
                c = d.int("COUNT(*)"),
            ),
            vec![span.clone(), span],
        )
    }

    pub fn top_errors(d: Dialect) -> String {
        format!(
            "SELECT {e}, {c} FROM {r} WHERE processing_status = 'failed' AND processing_error IS NOT NULL \
             GROUP BY processing_error ORDER BY COUNT(*) DESC, processing_error LIMIT 5",
            e = d.text("processing_error"),
            c = d.int("COUNT(*)"),
            r = schema::RECORDINGS
        )
    }

    /// `enqueue`: the columns `CallRecordingService::uploadForProcessing` fills.
    pub fn enqueue(d: Dialect, rec: &NewRecording) -> (String, Vec<Val>) {
        let ps: Vec<String> = (1..=7).map(|n| d.p(n)).collect();
        (
            format!(
                "INSERT INTO {} (apex_id, r2_path, r2_bucket, duration_seconds, file_size_bytes, file_format, priority, \
                     processing_status, attempts, uploaded_at, created_at, updated_at) \
                 VALUES ({}, 'pending', 0, {now}, {now}, {now})",
                schema::RECORDINGS,
                ps.join(", "),
                now = d.now()
            ),
            vec![
                Val::Text(rec.apex_id.clone()),
                Val::Text(Some(rec.r2_path.clone())),
                Val::Text(rec.r2_bucket.clone()),
                Val::Int(rec.duration_seconds),
                Val::Int(rec.file_size_bytes),
                Val::Text(rec.file_format.clone()),
                Val::Int(Some(rec.priority as i64)),
            ],
        )
    }

    pub fn list(d: Dialect, id: Option<i64>, limit: u32) -> (String, Vec<Val>) {
        let (cond, mut vals) = match id {
            Some(id) => (format!("WHERE r.id = {}", d.p(1)), vec![Val::Int(Some(id))]),
            None => (String::new(), vec![]),
        };
        vals.push(Val::Int(Some(limit as i64)));
        (
            format!(
                "SELECT {id}, {apex}, {path}, {bucket}, {status}, {attempts}, {worker}, {error}, {dur}, \
                     {deleted}, (SELECT {c} FROM {a} x WHERE x.ai_call_recording_id = r.id), {stage}, {crashes} \
                 FROM {r} r {cond} ORDER BY r.id LIMIT {lim}",
                id = d.int("r.id"),
                apex = d.text("r.apex_id"),
                path = d.text("r.r2_path"),
                bucket = d.text("r.r2_bucket"),
                status = d.text("r.processing_status"),
                attempts = d.int("r.attempts"),
                worker = d.text("r.worker_id"),
                error = d.text("r.processing_error"),
                dur = d.int("r.duration_seconds"),
                deleted = d.int("CASE WHEN r.deleted_at IS NULL THEN 0 ELSE 1 END"),
                c = d.int("COUNT(*)"),
                stage = d.text("r.processing_stage"),
                crashes = d.int("r.crashes"),
                a = schema::ANALYSIS,
                r = schema::RECORDINGS,
                lim = d.p(vals.len()),
            ),
            vals,
        )
    }

    pub fn transcription(d: Dialect) -> String {
        format!(
            "SELECT {}, full_transcript, {}, {}, {}, {}, {}, {} FROM {} WHERE ai_call_recording_id = {} \
             ORDER BY id DESC LIMIT 1",
            d.int("id"),
            d.text("language_detected"),
            d.float("language_probability"),
            d.float("confidence_score"),
            d.text("model_used"),
            d.text("transcription_details"),
            d.text("segments"),
            schema::TRANSCRIPTIONS,
            d.p(1)
        )
    }

    pub fn segment_rows(d: Dialect) -> String {
        format!("SELECT {} FROM {} WHERE ai_call_transcription_id = {}", d.int("COUNT(*)"), schema::SEGMENTS, d.p(1))
    }

    pub fn analysis(d: Dialect) -> String {
        format!(
            "SELECT {}, {}, summary, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, analysis_error, {}, {} FROM {} \
             WHERE ai_call_recording_id = {} ORDER BY id DESC LIMIT 1",
            d.text("speaker_metrics"),
            d.text("audio_quality"),
            d.float("sentiment_score"),
            d.text("sentiment_label"),
            d.float("quality_score"),
            d.text("quality_zone"),
            d.text("key_topics"),
            d.text("action_items"),
            d.text("compliance_flags"),
            d.text("outcome"),
            d.text("engine"),
            d.text("model_used"),
            d.text("analysis_status"),
            d.text("score_impacts"),
            d.text("analysis_config"),
            schema::ANALYSIS,
            d.p(1)
        )
    }

    /// The completing update: `completed`, timestamps, the measured duration
    /// where the app left none.
    /// The cleaned copy's key goes to `redacted_audio_path`, and to `r2_path`
    /// (a WAV now) when the original is to be deleted.
    pub fn complete(d: Dialect, lease: &Lease, r: &JobResults) -> (String, Vec<Val>) {
        let cleaned = r.redaction.as_ref().and_then(|x| x.audio_key.clone());
        let replace = cleaned.is_some() && r.redaction.as_ref().is_some_and(|x| x.replace_original);
        let mut set = format!(
            "processing_status = 'completed', processing_completed_at = {}, heartbeat_at = NULL, \
             lease_token = NULL, processing_error = NULL, processing_stage = NULL, \
             duration_seconds = COALESCE(duration_seconds, {}), redacted_audio_path = {}",
            d.now(),
            d.p(1),
            d.p(2)
        );
        let mut vals = vec![Val::Int(r.duration_seconds()), Val::Text(cleaned.clone())];
        if replace {
            set.push_str(&format!(", r2_path = {}, file_format = 'wav'", d.p(3)));
            vals.push(Val::Text(cleaned));
        }
        set_held(d, &set, vals, lease)
    }

    /// Earlier results of the recording, deleted in the completing transaction.
    pub fn delete_results(d: Dialect, segments_table: bool) -> Vec<String> {
        let mut out = Vec::new();
        if segments_table {
            out.push(format!(
                "DELETE FROM {} WHERE ai_call_transcription_id IN \
                 (SELECT id FROM {} WHERE ai_call_recording_id = {})",
                schema::SEGMENTS,
                schema::TRANSCRIPTIONS,
                d.p(1)
            ));
        }
        out.push(format!("DELETE FROM {} WHERE ai_call_recording_id = {}", schema::TRANSCRIPTIONS, d.p(1)));
        out.push(format!("DELETE FROM {} WHERE ai_call_recording_id = {}", schema::ANALYSIS, d.p(1)));
        out
    }

    /// The active rows of `ai_configs`, oldest first (later rows apply last).
    pub fn analysis_layers(d: Dialect) -> String {
        format!(
            "SELECT {}, {}, {}, {}, {} FROM {} WHERE is_active = {} ORDER BY updated_at, id",
            d.text("config_tier"),
            d.text("campaign_type"),
            d.text("direction"),
            d.text("client_ref"),
            d.text("config_data"),
            schema::CONFIGS,
            if d.backend == Backend::Postgres { "TRUE" } else { "1" },
        )
    }

    /// A recording's context columns.
    pub fn call_context(d: Dialect) -> String {
        format!(
            "SELECT {}, {}, {} FROM {} WHERE id = {}",
            d.text("campaign_type"),
            d.text("direction"),
            d.text("client_ref"),
            schema::RECORDINGS,
            d.p(1)
        )
    }

    /// `UPDATE ai_call_analysis SET … WHERE ai_call_recording_id = …` from columns.
    pub fn update_analysis(d: Dialect, id: i64, cols: &[(&str, Val, bool)]) -> (String, Vec<Val>) {
        let sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", c.0, if c.2 { d.json(i + 1) } else { d.p(i + 1) }))
            .collect();
        let mut vals: Vec<Val> = cols.iter().map(|c| c.1.clone()).collect();
        vals.push(Val::Int(Some(id)));
        (
            format!(
                "UPDATE {} SET {}, updated_at = {} WHERE ai_call_recording_id = {}",
                schema::ANALYSIS,
                sets.join(", "),
                d.now(),
                d.p(cols.len() + 1)
            ),
            vals,
        )
    }

    /// Completed, not deleted rows with a transcription, picked by `selector`.
    pub fn reanalysis_targets(d: Dialect, selector: &AnalysisSelector) -> (String, Vec<Val>) {
        let (cond, vals) = match selector {
            AnalysisSelector::Id(id) => (format!("r.id = {}", d.p(1)), vec![Val::Int(Some(*id))]),
            AnalysisSelector::FailedAnalysis => (
                format!(
                    "EXISTS (SELECT 1 FROM {} a WHERE a.ai_call_recording_id = r.id AND a.analysis_status = 'failed')",
                    schema::ANALYSIS
                ),
                vec![],
            ),
            AnalysisSelector::CompletedWithin(span) => {
                (format!("r.processing_completed_at >= {}", d.shifted(1, false)), vec![d.span(*span, false)])
            }
        };
        (
            format!(
                "SELECT {} FROM {} r WHERE r.processing_status = 'completed' AND r.deleted_at IS NULL AND {cond} \
                 AND EXISTS (SELECT 1 FROM {} t WHERE t.ai_call_recording_id = r.id) ORDER BY r.id",
                d.int("r.id"),
                schema::RECORDINGS,
                schema::TRANSCRIPTIONS
            ),
            vals,
        )
    }

    /// `INSERT` of a row whose columns and values come in pairs; `json` columns
    /// get the dialect's JSON placeholder; `created_at`/`updated_at` are now.
    pub fn insert(d: Dialect, table: &str, cols: &[(&str, Val, bool)], returning: bool) -> (String, Vec<Val>) {
        let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let ps: Vec<String> =
            cols.iter().enumerate().map(|(i, c)| if c.2 { d.json(i + 1) } else { d.p(i + 1) }).collect();
        let ret = if returning && d.backend != Backend::Mysql { " RETURNING id" } else { "" };
        (
            format!(
                "INSERT INTO {table} ({}, created_at, updated_at) VALUES ({}, {now}, {now}){ret}",
                names.join(", "),
                ps.join(", "),
                now = d.now()
            ),
            cols.iter().map(|c| c.1.clone()).collect(),
        )
    }
}

/// The `ai_call_transcriptions` row of a completing job: `(column, value, is_json)`.
pub(crate) fn transcription_row(id: i64, r: &JobResults) -> Option<Vec<(&'static str, Val, bool)>> {
    let t = r.transcript.as_ref()?;
    let mut details = r.transcript_metadata().unwrap_or_else(|| serde_json::json!({}));
    if let (Some(m), Some(obj)) = (&r.speaker_metrics, details.as_object_mut()) {
        obj.insert("call".into(), contract::call_figures(m));
    }
    let redaction = r.redaction.as_ref();
    Some(vec![
        ("ai_call_recording_id", Val::Int(Some(id)), false),
        // NOT NULL in the app: the redacted text unless the raw is kept on purpose.
        (
            "full_transcript",
            Val::Text(Some(redaction.and_then(|x| x.raw_text.clone()).unwrap_or_else(|| t.full_text()))),
            false,
        ),
        ("redacted_transcript", Val::Text(redaction.map(|_| t.full_text())), false),
        ("pii_detected", Val::Text(redaction.and_then(|x| serde_json::to_string(&x.items).ok())), true),
        ("segments", Val::Text(Some(contract::segments(t).to_string())), true),
        ("language_detected", Val::Text(Some(contract::clip(&t.language, 32))), false),
        ("confidence_score", Val::Float(Some(contract::unit_score(t.confidence()))), false),
        ("model_used", Val::Text(Some(contract::clip(&t.model, 191))), false),
        ("processing_time_seconds", Val::Int(Some(contract::whole_seconds(t.processing_seconds) as i64)), false),
        ("language_probability", Val::Float(Some(contract::unit_score(t.language_probability))), false),
        ("transcription_details", Val::Text(Some(details.to_string())), true),
    ])
}

/// The `ai_call_analysis` row of a completing job; `None` when the job has
/// nothing for it (queue tests carry no audio).
pub(crate) fn analysis_row(id: i64, r: &JobResults) -> Option<Vec<(&'static str, Val, bool)>> {
    if r.audio.is_none() && r.speaker_metrics.is_none() {
        return None;
    }
    let js = |v: Option<serde_json::Value>| Val::Text(v.map(|v| v.to_string()));
    let mut cols = vec![
        ("ai_call_recording_id", Val::Int(Some(id)), false),
        ("speaker_metrics", js(r.speaker_metrics.as_ref().map(contract::speaker_metrics)), true),
        ("audio_quality", js(r.audio.as_ref().and_then(|q| serde_json::to_value(q).ok())), true),
    ];
    let outcome = match (&r.analysis, &r.analysis_error) {
        (Some(a), _) => Ok(a),
        (None, Some(e)) => Err(e.as_str()),
        (None, None) => Err(""),
    };
    cols.extend(analysis_cols(outcome, r.transcript.as_ref()));
    Some(cols)
}

/// The analysis columns of `ai_call_analysis`: from an analysis, or from its
/// failure (`Err(reason)`; an empty reason: no engine ran, `skipped`).
pub(crate) fn analysis_cols(
    outcome: Result<&crate::analyze::Analysis, &str>,
    t: Option<&crate::asr::Transcript>,
) -> Vec<(&'static str, Val, bool)> {
    let an = outcome.ok();
    let text = |v: Option<String>| Val::Text(v);
    let js = |v: Option<serde_json::Value>| Val::Text(v.map(|v| v.to_string()));
    let quality = an.and_then(|a| a.quality_score).map(contract::quality_score);
    let sentiment = an.and_then(|a| a.sentiment_score);
    let (status, error) = match outcome {
        Ok(_) => ("completed", None),
        Err("") => ("skipped", None),
        Err(e) => ("failed", Some(clip_error(e))),
    };
    vec![
        ("summary", text(an.map(|a| a.summary.clone())), false),
        ("sentiment_score", Val::Float(sentiment.map(contract::sentiment_score)), false),
        ("sentiment_label", text(sentiment.map(|s| crate::analyze::sentiment_label(s).to_string())), false),
        ("key_topics", js(an.map(|a| contract::key_topics(a, t))), true),
        ("action_items", js(an.map(contract::action_items)), true),
        ("quality_score", Val::Float(quality), false),
        ("compliance_flags", js(an.map(contract::compliance_flags)), true),
        // NOT NULL in the app's table: "none" when no engine answered.
        (
            "model_used",
            Val::Text(Some(an.map(|a| contract::clip(&a.model, 191)).unwrap_or_else(|| "none".into()))),
            false,
        ),
        ("processing_time_seconds", Val::Int(an.map(|a| contract::whole_seconds(a.seconds) as i64)), false),
        ("quality_zone", text(quality.map(|q| contract::quality_zone(q).to_string())), false),
        ("outcome", text(an.and_then(|a| a.outcome.as_deref()).map(|o| contract::clip(o, 64))), false),
        ("outcome_details", js(an.map(|a| a.outcome_details.clone())), true),
        ("quality_breakdown", js(an.map(|a| a.quality_items.clone())), true),
        ("speaker_sentiment", js(an.map(|a| contract::speaker_sentiment(&a.speaker_sentiment))), true),
        ("score_impacts", js(an.map(contract::score_impacts)), true),
        ("agent_actions", js(an.map(contract::agent_actions)), true),
        (
            "analysis_config",
            js(an.map(|a| {
                serde_json::json!({
                    "tiers": a.applied.tiers,
                    "version": a.applied.version,
                    "dropped_findings": a.dropped_findings,
                })
            })),
            true,
        ),
        ("engine", text(an.map(|a| contract::clip(&a.engine, 32))), false),
        ("analysis_status", text(Some(status.to_string())), false),
        ("analysis_error", text(error), false),
    ]
}

/// One `ai_call_segments` row, ready to bind.
pub(crate) struct SegmentRow {
    pub index: i64,
    pub speaker: Option<String>,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: String,
    pub confidence: f64,
}

/// Columns of the `ai_call_segments` insert.
pub(crate) const SEGMENT_COLUMNS: &str =
    "ai_call_transcription_id, segment_index, speaker_label, start_time, end_time, \
    text, words, confidence, created_at, updated_at";

/// Rows per multi-row INSERT (10 binds each stays far below every backend's limit).
pub(crate) const SEGMENT_BATCH: usize = 400;

pub(crate) fn segment_rows(t: &crate::asr::Transcript) -> Vec<SegmentRow> {
    let json = contract::segments(t);
    t.segments
        .iter()
        .enumerate()
        .map(|(i, s)| SegmentRow {
            index: i as i64,
            speaker: s.speaker.as_deref().map(|x| contract::clip(x, 64)),
            start: contract::round(s.start, 3),
            end: contract::round(s.end, 3),
            text: s.text.trim().to_string(),
            words: json[i]["words"].to_string(),
            confidence: contract::unit_score(s.confidence),
        })
        .collect()
}

/// Push one segment row into a `QueryBuilder::push_values` separator; `$json`
/// is the backend's cast after the words placeholder (`"::json"` or `""`).
macro_rules! push_segment {
    ($b:expr, $tid:expr, $r:expr, $json:expr, $now:expr) => {{
        let r = $r;
        $b.push_bind($tid)
            .push_bind(r.index as i32)
            .push_bind(r.speaker.clone())
            .push_bind(r.start)
            .push_bind(r.end)
            .push_bind(r.text.clone())
            .push_bind(r.words.clone())
            .push_unseparated($json)
            .push_bind(r.confidence)
            .push($now)
            .push($now);
    }};
}

/// The completing transaction after `BEGIN`, the same on every backend: the fenced
/// status change (a lost lease stops here), the earlier results deleted, then the
/// analysis, transcription and segment rows inserted. `$conn` is the open
/// transaction, `$db` the sqlx database type, `$json` the cast after a JSON
/// placeholder; the backend module provides `DIALECT` and `insert_id` (the new
/// row's id: `RETURNING id`, or MySQL's last insert id).
macro_rules! write_results {
    ($conn:expr, $lease:expr, $results:expr, $segments_table:expr, $db:ty, $json:expr) => {{
        let (lease, results) = ($lease, $results);
        let (sql, vals) = $crate::queue::sql::complete(DIALECT, lease, results);
        let done = $crate::queue::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&mut *$conn).await?;
        if done.rows_affected() != 1 {
            return Err(QueueError::LeaseLost { id: lease.id, attempt: lease.attempt });
        }
        for stmt in $crate::queue::sql::delete_results(DIALECT, $segments_table) {
            sqlx::query(sqlx::AssertSqlSafe(stmt)).bind(lease.id).execute(&mut *$conn).await?;
        }
        if let Some(cols) = $crate::queue::analysis_row(lease.id, results) {
            let (sql, vals) = $crate::queue::sql::insert(DIALECT, $crate::queue::schema::ANALYSIS, &cols, false);
            $crate::queue::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&mut *$conn).await?;
        }
        if let (Some(cols), Some(transcript)) =
            ($crate::queue::transcription_row(lease.id, results), &results.transcript)
        {
            let (sql, vals) = $crate::queue::sql::insert(DIALECT, $crate::queue::schema::TRANSCRIPTIONS, &cols, true);
            let tid = insert_id(&mut *$conn, sql, vals).await?;
            if $segments_table {
                for chunk in $crate::queue::segment_rows(transcript).chunks($crate::queue::SEGMENT_BATCH) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO {} ({}) ",
                        $crate::queue::schema::SEGMENTS,
                        $crate::queue::SEGMENT_COLUMNS
                    ));
                    qb.push_values(chunk, |mut b, r| $crate::queue::push_segment!(b, tid, r, $json, DIALECT.now()));
                    qb.build().execute(&mut *$conn).await?;
                }
            }
        }
        Ok(())
    }};
}

/// The steps of `migrate`, the same on every backend and run inside the
/// backend's own lock or transaction on `$conn`: create the missing tables, add
/// the missing worker columns, create the missing indexes. Each step checks
/// first, so a run that stopped half-way is finished by the next. `columns`
/// lists `(table, column)` now; `index_exists` says whether index `name` exists.
/// Evaluates to the changes made, one line each; `?` returns database errors.
macro_rules! converge_schema {
    ($conn:ident, $backend:expr, columns: $columns:expr, index_exists: |$name:ident| $exists:expr) => {{
        let before = $columns;
        for stmt in $crate::queue::schema::statements($crate::queue::schema::create_tables($backend)) {
            $conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
        }
        let mut did = $crate::queue::schema::new_tables(&before);
        for stmt in $crate::queue::schema::add_column_statements($backend, &$columns) {
            $conn.execute(sqlx::AssertSqlSafe(stmt.clone())).await?;
            did.push(stmt);
        }
        for ($name, stmt) in $crate::queue::schema::index_statements($backend) {
            if !$exists {
                $conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
                did.push(format!("created index {}", $name));
            }
        }
        did
    }};
}

/// Bind [`Val`]s to a query of any backend, in order.
macro_rules! bind_vals {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                $crate::queue::Val::Int(i) => q.bind(i),
                $crate::queue::Val::Float(f) => q.bind(f),
                $crate::queue::Val::Text(t) => q.bind(t),
            };
        }
        q
    }};
}

/// `impl Queue for $ty`: the backend's own methods (`{ … }`), then the methods
/// whose SQL is the same on every backend but for the [`Dialect`] (the backend
/// module provides `self.pool`, `DIALECT`, `exec_held`, `insert_returning_id` and
/// `has_segments_table`). One macro emits the whole impl because `async_trait`
/// must see every method.
macro_rules! impl_queue {
    ($ty:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::queue::Queue for $ty {
        $($own)*

        async fn heartbeat(&self, lease: &Lease) -> Result<bool, QueueError> {
            self.exec_held(super::sql::heartbeat(DIALECT, lease)).await
        }

        async fn set_stage(&self, lease: &Lease, stage: &str) -> Result<bool, QueueError> {
            self.exec_held(super::sql::stage(DIALECT, lease, stage)).await
        }

        async fn record_crash(&self, lease: &Lease) -> Result<Option<u32>, QueueError> {
            if !self.exec_held(super::sql::crash(DIALECT, lease)).await? {
                return Ok(None);
            }
            let (sql, vals) = super::sql::crashes(DIALECT, lease.id);
            let (n,): (i64,) =
                super::bind_vals!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), vals).fetch_one(&self.pool).await?;
            Ok(Some(n.clamp(0, u32::MAX as i64) as u32))
        }

        async fn retry(&self, lease: &Lease, error: &str, delay: Duration) -> Result<bool, QueueError> {
            self.exec_held(super::sql::retry(DIALECT, lease, error, delay)).await
        }

        async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, QueueError> {
            self.exec_held(super::sql::fail(DIALECT, lease, error)).await
        }

        async fn release(&self, lease: &Lease) -> Result<bool, QueueError> {
            self.exec_held(super::sql::release(DIALECT, lease)).await
        }

        async fn defer(&self, lease: &Lease, reason: &str, delay: Duration) -> Result<bool, QueueError> {
            self.exec_held(super::sql::defer(DIALECT, lease, reason, delay)).await
        }

        async fn rescue_stale(
            &self,
            stale_after: Duration,
            default_max: u32,
            max_crashes: u32,
        ) -> Result<super::RescueCounts, QueueError> {
            let [(f_sql, f_vals), (r_sql, r_vals)] = super::sql::rescue(DIALECT, stale_after, default_max, max_crashes);
            let failed = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(f_sql)), f_vals)
                .execute(&self.pool)
                .await?
                .rows_affected();
            let requeued = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(r_sql)), r_vals)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(super::RescueCounts { requeued, failed })
        }

        async fn requeue_failed(&self, id: Option<i64>) -> Result<u64, QueueError> {
            let (sql, vals) = super::sql::requeue_failed(DIALECT, id);
            Ok(super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&self.pool).await?.rows_affected())
        }

        async fn reprocess(&self, selector: &super::Selector) -> Result<u64, QueueError> {
            let (sql, vals) = super::sql::reprocess(DIALECT, selector);
            Ok(super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&self.pool).await?.rows_affected())
        }

        async fn stats(&self) -> Result<super::Stats, QueueError> {
            let mut s = super::Stats::default();
            let rows: Vec<(String, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(super::sql::status_counts(DIALECT))).fetch_all(&self.pool).await?;
            for (status, n) in rows {
                s.set_count(&status, super::count(n));
            }
            let (sql, vals) = super::sql::stats_figures(DIALECT);
            let (deferred, oldest, done_h, failed_h, faults): (i64, Option<f64>, i64, i64, i64) =
                super::bind_vals!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), vals).fetch_one(&self.pool).await?;
            s.worker_faults = super::count(faults);
            s.deferred = super::count(deferred);
            s.oldest_pending_age_seconds = oldest;
            s.completed_last_hour = super::count(done_h);
            s.failed_last_hour = super::count(failed_h);
            let errors: Vec<(String, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(super::sql::top_errors(DIALECT))).fetch_all(&self.pool).await?;
            s.top_errors =
                errors.into_iter().map(|(error, n)| super::ErrorCount { error, count: super::count(n) }).collect();
            Ok(s)
        }

        async fn list(&self, id: Option<i64>, limit: u32) -> Result<Vec<super::RecordingView>, QueueError> {
            use sqlx::Row;
            let (sql, vals) = super::sql::list(DIALECT, id, limit);
            let rows = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).fetch_all(&self.pool).await?;
            // Values the app wrote in a type we cannot read (SQLite keeps anything)
            // are shown as `(unreadable)`, never a panic in an admin command.
            let text = |r: &_, i: usize| -> Option<String> {
                sqlx::Row::try_get::<Option<String>, _>(r, i).unwrap_or_else(|_| Some("(unreadable)".into()))
            };
            Ok(rows
                .into_iter()
                .map(|r| super::RecordingView {
                    id: r.get(0),
                    apex_id: text(&r, 1),
                    r2_path: text(&r, 2).unwrap_or_default(),
                    r2_bucket: text(&r, 3),
                    status: text(&r, 4).unwrap_or_default(),
                    attempts: r.try_get(5).unwrap_or_default(),
                    worker_id: text(&r, 6),
                    processing_error: text(&r, 7),
                    duration_seconds: r.try_get(8).unwrap_or_default(),
                    deleted: r.try_get::<i64, _>(9).unwrap_or_default() != 0,
                    analyses: r.try_get(10).unwrap_or_default(),
                    stage: text(&r, 11),
                    crashes: r.try_get(12).unwrap_or_default(),
                })
                .collect())
        }

        async fn results(&self, id: i64) -> Result<super::StoredResults, QueueError> {
            use sqlx::Row;
            let mut out = super::StoredResults::default();
            let t = sqlx::query(sqlx::AssertSqlSafe(super::sql::transcription(DIALECT)))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = t {
                let tid: i64 = r.get(0);
                let segment_rows = if self.has_segments_table().await? {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(super::sql::segment_rows(DIALECT)))
                        .bind(tid)
                        .fetch_one(&self.pool)
                        .await?
                } else {
                    0
                };
                let segments: Vec<super::StoredSegment> =
                    super::json(r.get(7)).and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
                out.transcript = Some(super::StoredTranscript {
                    full_transcript: r.get::<Option<String>, _>(1).unwrap_or_default(),
                    language_detected: r.get(2),
                    language_probability: r.get(3),
                    confidence_score: r.get(4),
                    model_used: r.get(5),
                    details: super::json(r.get(6)),
                    segments,
                    segment_rows,
                });
            }
            let a = sqlx::query(sqlx::AssertSqlSafe(super::sql::analysis(DIALECT)))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = a {
                out.speaker_metrics = super::json(r.get(0));
                out.audio_quality = super::json(r.get(1));
                out.summary = r.get(2);
                out.sentiment_score = r.get(3);
                out.sentiment_label = r.get(4);
                out.quality_score = r.get(5);
                out.quality_zone = r.get(6);
                out.key_topics = super::json(r.get(7));
                out.action_items = super::json(r.get(8));
                out.compliance_flags = super::json(r.get(9));
                out.outcome = r.get(10);
                out.engine = r.get(11);
                out.model_used = r.get(12);
                out.analysis_status = r.get(13);
                out.analysis_error = r.get(14);
                out.score_impacts = super::json(r.get(15));
                out.analysis_config = super::json(r.get(16));
            }
            Ok(out)
        }

        async fn reanalysis_targets(&self, selector: &super::AnalysisSelector) -> Result<Vec<i64>, QueueError> {
            let (sql, vals) = super::sql::reanalysis_targets(DIALECT, selector);
            Ok(super::bind_vals!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), vals).fetch_all(&self.pool).await?)
        }

        async fn store_analysis(
            &self,
            id: i64,
            analysis: Result<&crate::analyze::Analysis, &str>,
            transcript: &crate::asr::Transcript,
        ) -> Result<(), QueueError> {
            let cols = super::analysis_cols(analysis, Some(transcript));
            let (sql, vals) = super::sql::update_analysis(DIALECT, id, &cols);
            let n = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&self.pool).await?.rows_affected();
            if n == 0 {
                let mut all = vec![("ai_call_recording_id", super::Val::Int(Some(id)), false)];
                all.extend(cols);
                let (sql, vals) = super::sql::insert(DIALECT, super::schema::ANALYSIS, &all, false);
                super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&self.pool).await?;
            }
            Ok(())
        }

        async fn analysis_layers(&self) -> Result<Vec<crate::analyze::TableLayer>, QueueError> {
            if !self.table_exists(super::schema::CONFIGS).await? {
                return Ok(Vec::new());
            }
            let rows: Vec<(Option<String>, Option<String>, Option<String>, Option<String>, Option<String>)> =
                sqlx::query_as(sqlx::AssertSqlSafe(super::sql::analysis_layers(DIALECT))).fetch_all(&self.pool).await?;
            Ok(rows
                .into_iter()
                .filter_map(|(tier, campaign_type, direction, client_ref, data)| {
                    let tier = tier.unwrap_or_default();
                    let key = match crate::analyze::profile::Tier::from_table(&tier) {
                        Some(crate::analyze::profile::Tier::CampaignType) => campaign_type,
                        Some(crate::analyze::profile::Tier::Direction) => direction,
                        Some(crate::analyze::profile::Tier::Client) => client_ref,
                        _ => None,
                    };
                    let data = data.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or(serde_json::Value::Null);
                    crate::analyze::TableLayer::from_row(&tier, key, &data)
                        .map_err(|e| tracing::warn!(tier = %tier, error = %e, "ai_configs row skipped"))
                        .ok()
                })
                .collect())
        }

        async fn call_context(&self, id: i64) -> Result<super::CallContext, QueueError> {
            let row: Option<(Option<String>, Option<String>, Option<String>)> =
                sqlx::query_as(sqlx::AssertSqlSafe(super::sql::call_context(DIALECT))).bind(id).fetch_optional(&self.pool).await?;
            let (campaign_type, direction, client_ref) = row.unwrap_or_default();
            Ok(super::CallContext { campaign_type, direction, client_ref })
        }

        async fn enqueue(&self, rec: &super::NewRecording) -> Result<i64, QueueError> {
            let (sql, vals) = super::sql::enqueue(DIALECT, rec);
            self.insert_returning_id(sql, vals).await
        }

        async fn close(&self) {
            self.pool.close().await;
        }
        }
    };
}

pub(crate) use {bind_vals, converge_schema, impl_queue, push_segment, write_results};

/// Microseconds for interval arithmetic in SQL.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Clamp a database count to `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Attempts from a database integer.
pub(crate) fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_sql_errors_are_not_retried() {
        assert!(is_deterministic(Some("22001")), "value too long");
        assert!(is_deterministic(Some("42804")), "json vs jsonb");
        assert!(is_deterministic(Some("23000")), "constraint");
        assert!(!is_deterministic(Some("08006")), "connection failure");
        assert!(!is_deterministic(Some("40001")), "deadlock / serialization");
        assert!(!is_deterministic(Some("53300")), "too many connections");
        assert!(is_deterministic(Some("275")), "sqlite CHECK constraint");
        assert!(!is_deterministic(Some("5")), "sqlite busy");
        assert!(!is_deterministic(None));
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        let pg = Dialect { backend: Backend::Postgres };
        let my = Dialect { backend: Backend::Mysql };
        let lease = Lease { id: 7, worker_id: "w".into(), attempt: 2, token: "t".into() };
        let (sql, vals) = sql::retry(pg, &lease, "boom", Duration::from_secs(3));
        assert!(sql.contains("$1") && sql.contains("$4") && !sql.contains('?'), "{sql}");
        assert!(sql.contains("lease_token = $4"), "fenced on the claim's token: {sql}");
        assert_eq!(vals.len(), 4);
        let (sql, vals) = sql::retry(my, &lease, "boom", Duration::from_secs(3));
        assert_eq!(sql.matches('?').count(), vals.len(), "{sql}");
        for d in [pg, my, Dialect { backend: Backend::Sqlite }] {
            for (sql, vals) in sql::rescue(d, Duration::from_secs(60), 5, 3) {
                // Placeholders outside string literals (`'?'` is a literal).
                let unquoted: String = sql.split('\'').step_by(2).collect();
                let n = if d.backend == Backend::Postgres {
                    (1..=9).filter(|i| unquoted.contains(&format!("${i}"))).count()
                } else {
                    unquoted.matches('?').count()
                };
                assert_eq!(n, vals.len(), "{:?}: {sql}", d.backend);
            }
        }
    }
}
