//! The database is the queue. One trait, [`Queue`], one module per backend:
//! [`postgres`] (`FOR UPDATE SKIP LOCKED` inside one `UPDATE … RETURNING`),
//! [`mysql`] (MariaDB ≥ 10.6 / MySQL ≥ 8: `SELECT … ORDER BY … LIMIT n FOR UPDATE
//! SKIP LOCKED` then `UPDATE` in one short transaction) and [`sqlite`] (one
//! `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`, serialised by SQLite's
//! write lock). [`maintenance`] holds the rescuer. Times come from the database's
//! clock, so workers with skewed clocks still agree on what is stale.
//!
//! No method holds a transaction or a pooled connection beyond its own call: the
//! minutes a job runs are spent outside the database.

pub mod job;
pub mod maintenance;
pub mod mysql;
pub mod postgres;
pub mod schema;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use job::{clip_error, ErrorCount, Job, JobResults, JobState, Lease, NewRecording, RescueCounts, Selector, Stats};

use crate::config::{Backend, DatabaseConfig};

/// Errors of the queue. Database trouble is transient (the worker retries later);
/// a lost lease means another worker owns the row now.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("lease lost: row {id} is no longer held by this worker for attempt {attempt}")]
    LeaseLost { id: i64, attempt: u32 },
    #[error("schema: {0}")]
    Schema(String),
}

impl QueueError {
    /// Whether the same call may succeed later (a dead or busy database).
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Database(_))
    }
}

/// A row as admins and tests see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordingView {
    pub id: i64,
    pub apex_id: Option<String>,
    pub file_path: String,
    pub status: String,
    pub attempts: i64,
    pub worker_id: Option<String>,
    pub last_error: Option<String>,
    /// `metadata.duration` as written back by the worker.
    pub duration: Option<f64>,
    /// Number of `ai_call_analyses` rows for this recording (0 or 1).
    pub analyses: i64,
}

/// A recording's stored results, as the Laravel app would read them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoredResults {
    pub transcript: Option<StoredTranscript>,
    pub speaker_metrics: Option<serde_json::Value>,
    pub audio_quality_score: Option<f64>,
    pub summary: Option<String>,
    pub sentiment_label: Option<String>,
    pub quality_score: Option<f64>,
    pub outcome: Option<String>,
    pub engine: Option<String>,
    pub model_name: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredTranscript {
    pub full_transcript: String,
    pub language: Option<String>,
    pub language_probability: Option<f64>,
    pub model_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub segments: Vec<StoredSegment>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredSegment {
    pub index: i64,
    pub speaker: Option<String>,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: serde_json::Value,
}

/// The analyses columns `results` reads.
pub(crate) type AnalysisRow = (
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(crate) fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// The queue operations every backend provides.
#[async_trait]
pub trait Queue: Send + Sync {
    fn backend(&self) -> Backend;

    /// Apply the bundled migrations that have not been applied; returns their names.
    async fn migrate(&self) -> Result<Vec<String>, QueueError>;

    /// `table.column` names the worker needs that the database lacks.
    async fn missing_columns(&self) -> Result<Vec<String>, QueueError>;

    /// Why the claim cannot read just the rows it takes (an index the schema
    /// lacks), when the backend can tell; `None` when it is served well.
    async fn claim_index_problem(&self) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    /// Claim up to `n` claimable rows for `worker_id`, bumping their attempts.
    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError>;

    /// Refresh the heartbeat; `false` when the row is no longer held by this lease.
    async fn heartbeat(&self, lease: &Lease) -> Result<bool, QueueError>;

    /// Write results and mark `completed` in one transaction, only if still held.
    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError>;

    /// Back to `pending` with `last_error`, claimable again after `delay`.
    async fn retry(&self, lease: &Lease, error: &str, delay: Duration) -> Result<bool, QueueError>;

    /// `failed` for good with a readable `last_error`.
    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, QueueError>;

    /// Hand the row back to `pending` without spending the attempt (shutdown).
    async fn release(&self, lease: &Lease) -> Result<bool, QueueError>;

    /// Rows `processing` whose heartbeat is older than `stale_after`: back to
    /// `pending`, or `failed` when their attempts are spent.
    async fn rescue_stale(&self, stale_after: Duration, default_max_attempts: u32) -> Result<RescueCounts, QueueError>;

    /// `failed` rows (or the one with `id`) back to `pending` with fresh attempts.
    async fn requeue_failed(&self, id: Option<i64>) -> Result<u64, QueueError>;

    /// Selected rows that are not being processed back to `pending` with fresh
    /// attempts; their results are replaced when they complete again.
    async fn reprocess(&self, selector: &Selector) -> Result<u64, QueueError>;

    async fn stats(&self) -> Result<Stats, QueueError>;

    /// Insert a `pending` row; returns its id.
    async fn enqueue(&self, rec: &NewRecording) -> Result<i64, QueueError>;

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

/// Columns of the `ai_call_analyses` insert; values in [`AnalysisValues`] order.
pub(crate) const ANALYSIS_COLUMNS: &str = "call_recording_id, audio_duration_seconds, audio_sample_rate, \
    audio_channels, audio_rms_dbfs, audio_peak_dbfs, audio_clipping_ratio, audio_silence_ratio, audio_snr_db, \
    audio_quality_score, speaker_metrics, summary, sentiment_label, sentiment_score, quality_score, topics, outcome, \
    action_items, engine, model_name, speaker_sentiment, quality_breakdown, outcome_details, compliance_flags, \
    created_at, updated_at";

/// Columns of the `ai_call_transcriptions` insert; values in [`TranscriptValues`] order.
pub(crate) const TRANSCRIPTION_COLUMNS: &str = "call_recording_id, full_transcript, language, language_probability, \
    confidence, model_name, processing_seconds, audio_seconds, metadata, created_at, updated_at";

/// Columns of the `ai_transcription_segments` insert.
pub(crate) const SEGMENT_COLUMNS: &str =
    "transcription_id, segment_index, speaker, start_time, end_time, text, words, confidence, created_at, updated_at";

/// The `ai_call_analyses` row of a completing job, computed once for every backend
/// (JSON columns as text; each backend casts its placeholders as it must).
pub(crate) struct AnalysisValues {
    pub id: i64,
    pub audio: crate::audio::AudioQuality,
    pub speaker_metrics: Option<String>,
    pub summary: Option<String>,
    pub sentiment_label: Option<String>,
    pub sentiment_score: Option<f64>,
    pub quality_score: Option<f64>,
    pub topics: Option<String>,
    pub outcome: Option<String>,
    pub action_items: Option<String>,
    pub engine: Option<String>,
    pub model_name: Option<String>,
    pub speaker_sentiment: Option<String>,
    pub quality_breakdown: Option<String>,
    pub outcome_details: Option<String>,
    pub compliance_flags: Option<String>,
}

impl AnalysisValues {
    /// `None` when the job has nothing for `ai_call_analyses` (queue tests).
    pub fn of(id: i64, r: &JobResults) -> Option<AnalysisValues> {
        if r.audio.is_none() && r.speaker_metrics.is_none() {
            return None;
        }
        let an = r.analysis.as_ref();
        Some(AnalysisValues {
            id,
            audio: r.audio.clone().unwrap_or_else(crate::audio::AudioQuality::unknown),
            speaker_metrics: r.speaker_metrics.as_ref().map(json_text),
            summary: an.map(|a| a.summary.clone()),
            sentiment_label: an.map(|a| a.sentiment_label.clone()),
            sentiment_score: an.map(|a| a.sentiment_score),
            quality_score: an.map(|a| a.quality_score),
            topics: an.map(|a| json_text(&a.topics)),
            outcome: an.map(|a| a.outcome.clone()),
            action_items: an.map(|a| json_text(&a.action_items)),
            engine: an.map(|a| a.engine.clone()),
            model_name: an.map(|a| a.model.clone()),
            speaker_sentiment: an.map(|a| a.speaker_sentiment.to_string()),
            quality_breakdown: an.map(|a| a.quality_items.to_string()),
            outcome_details: an.map(|a| a.outcome_details.to_string()),
            compliance_flags: an.map(|a| json_text(&a.compliance_flags)),
        })
    }
}

/// JSON text of a value for a JSON column.
fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The `ai_call_transcriptions` row of a completing job.
pub(crate) struct TranscriptValues {
    pub id: i64,
    pub text: String,
    pub language: String,
    pub language_probability: f64,
    pub confidence: f64,
    pub model: String,
    pub processing_seconds: f64,
    pub audio_seconds: Option<f64>,
    pub metadata: Option<String>,
}

impl TranscriptValues {
    pub fn of(id: i64, r: &JobResults) -> Option<TranscriptValues> {
        let t = r.transcript.as_ref()?;
        Some(TranscriptValues {
            id,
            text: t.full_text(),
            language: t.language.clone(),
            language_probability: t.language_probability,
            confidence: t.confidence(),
            model: t.model.clone(),
            processing_seconds: t.processing_seconds,
            audio_seconds: r.audio.as_ref().map(|a| a.duration_seconds),
            metadata: r.transcript_metadata().map(|m| m.to_string()),
        })
    }
}

/// Bind [`AnalysisValues`] to a query of any backend, in column order.
macro_rules! bind_analysis {
    ($q:expr, $v:expr) => {{
        let v = $v;
        $q.bind(v.id)
            .bind(v.audio.duration_seconds)
            .bind(v.audio.sample_rate as i32)
            .bind(v.audio.channels as i32)
            .bind(v.audio.rms_dbfs)
            .bind(v.audio.peak_dbfs)
            .bind(v.audio.clipping_ratio)
            .bind(v.audio.silence_ratio)
            .bind(v.audio.snr_db)
            .bind(v.audio.quality_score)
            .bind(v.speaker_metrics)
            .bind(v.summary)
            .bind(v.sentiment_label)
            .bind(v.sentiment_score)
            .bind(v.quality_score)
            .bind(v.topics)
            .bind(v.outcome)
            .bind(v.action_items)
            .bind(v.engine)
            .bind(v.model_name)
            .bind(v.speaker_sentiment)
            .bind(v.quality_breakdown)
            .bind(v.outcome_details)
            .bind(v.compliance_flags)
    }};
}

/// Bind [`TranscriptValues`] to a query of any backend, in column order.
macro_rules! bind_transcript {
    ($q:expr, $v:expr) => {{
        let v = $v;
        $q.bind(v.id)
            .bind(v.text)
            .bind(v.language)
            .bind(v.language_probability)
            .bind(v.confidence)
            .bind(v.model)
            .bind(v.processing_seconds)
            .bind(v.audio_seconds)
            .bind(v.metadata)
    }};
}

/// Push one segment row into a `QueryBuilder::push_values` separator; `$json`
/// is the backend's cast after the words placeholder (`"::jsonb"` or `""`).
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

pub(crate) use {bind_analysis, bind_transcript, push_segment};

/// One `ai_transcription_segments` row, ready to bind.
pub(crate) struct SegmentRow {
    pub index: i64,
    pub speaker: Option<String>,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: String,
    pub confidence: f64,
}

/// Rows per multi-row INSERT (10 binds each stays far below every backend's limit).
pub(crate) const SEGMENT_BATCH: usize = 400;

pub(crate) fn segment_rows(t: &crate::asr::Transcript) -> Vec<SegmentRow> {
    t.segments
        .iter()
        .enumerate()
        .map(|(i, s)| SegmentRow {
            index: i as i64,
            speaker: s.speaker.clone(),
            start: s.start,
            end: s.end,
            text: s.text.clone(),
            words: serde_json::to_string(&s.words).unwrap_or_else(|_| "[]".into()),
            confidence: s.confidence,
        })
        .collect()
}

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
