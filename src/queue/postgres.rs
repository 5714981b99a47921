//! PostgreSQL backend: a claim is one `UPDATE … FROM (SELECT … FOR UPDATE SKIP
//! LOCKED LIMIT n) RETURNING`, so it costs one round trip.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

use super::schema;
use super::{attempts, count, Job, JobResults, Lease, NewRecording, Queue, QueueError, RecordingView};
use super::{ErrorCount, RescueCounts, Selector, Stats};
use crate::config::{Backend, DatabaseConfig};

/// The database's clock in UTC, as Laravel stores `timestamp` columns.
const NOW: &str = "(now() AT TIME ZONE 'UTC')";

pub struct PgQueue {
    pool: PgPool,
}

/// The lease condition, with the lease in `$1` (id), `$2` (worker) and `$3` (attempt).
const HELD: &str = "id = $1 AND processing_status = 'processing' AND worker_id = $2 AND attempts = $3";

impl PgQueue {
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, QueueError> {
        let opts = PgConnectOptions::from_str(cfg.url.expose())?.application_name("callscribe");
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.connect_timeout)
            .connect_with(opts)
            .await?;
        Ok(PgQueue { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn set_held(&self, lease: &Lease, set: &str, extra: Vec<Bind>) -> Result<bool, QueueError> {
        let sql = format!("UPDATE ai_call_recordings SET {set}, updated_at = {NOW} WHERE {HELD}");
        let mut q =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lease.id).bind(&lease.worker_id).bind(lease.attempt as i32);
        for b in extra {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Float(f) => q.bind(f),
            };
        }
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }
}

enum Bind {
    Text(String),
    Float(f64),
}

#[async_trait]
impl Queue for PgQueue {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        // One migrator at a time across workers.
        sqlx::query("SELECT pg_advisory_lock(727274)").execute(&mut *conn).await?;
        let result = async {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE IF NOT EXISTS {} (version VARCHAR(64) PRIMARY KEY, applied_at TIMESTAMP(6) NOT NULL)",
                schema::MIGRATIONS_TABLE
            )))
            .await?;
            let mut applied = Vec::new();
            for (version, sql) in schema::migrations(Backend::Postgres) {
                let done: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT version FROM {} WHERE version = $1",
                    schema::MIGRATIONS_TABLE
                )))
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
                if done.is_some() {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for stmt in schema::statements(sql) {
                    tx.execute(sqlx::AssertSqlSafe(stmt)).await?;
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {} (version, applied_at) VALUES ($1, {NOW})",
                    schema::MIGRATIONS_TABLE
                )))
                .bind(version)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                applied.push(version.to_string());
            }
            Ok::<_, QueueError>(applied)
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock(727274)").execute(&mut *conn).await?;
        result
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(schema::missing(&rows))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let sql = format!(
            "UPDATE ai_call_recordings r SET processing_status = 'processing', attempts = r.attempts + 1, \
                 worker_id = $1, processing_started_at = {NOW}, heartbeat_at = {NOW}, \
                 processing_completed_at = NULL, updated_at = {NOW} \
             FROM (SELECT id FROM ai_call_recordings \
                   WHERE processing_status = 'pending' AND (available_at IS NULL OR available_at <= {NOW}) \
                   ORDER BY priority DESC, id LIMIT $2 FOR UPDATE SKIP LOCKED) c \
             WHERE r.id = c.id \
             RETURNING r.id::int8, r.apex_id::text, r.file_path::text, r.priority::int4, r.attempts::int8, \
                 r.max_attempts::int8"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id).bind(n as i64).fetch_all(&self.pool).await?;
        let mut jobs = rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let attempt = attempts(r.get::<i64, _>(4));
                Job {
                    id,
                    apex_id: r.get(1),
                    file_path: r.get(2),
                    priority: r.get(3),
                    attempts: attempt,
                    max_attempts: r.get::<Option<i64>, _>(5).map(attempts),
                    lease: Lease { id, worker_id: worker_id.to_string(), attempt },
                }
            })
            .collect::<Vec<_>>();
        jobs.sort_by_key(|j| (-j.priority, j.id));
        Ok(jobs)
    }

    async fn heartbeat(&self, lease: &Lease) -> Result<bool, QueueError> {
        self.set_held(lease, &format!("heartbeat_at = {NOW}"), vec![]).await
    }

    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError> {
        let mut tx = self.pool.begin().await?;
        let duration = results.audio.as_ref().map(|a| a.duration_seconds);
        let sql = format!(
            "UPDATE ai_call_recordings SET processing_status = 'completed', processing_completed_at = {NOW}, \
                 heartbeat_at = NULL, last_error = NULL, updated_at = {NOW}, \
                 metadata = CASE WHEN $4::float8 IS NULL THEN metadata \
                     ELSE COALESCE(metadata::jsonb, '{{}}'::jsonb) || jsonb_build_object('duration', $4::float8) END \
             WHERE {HELD}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease.id)
            .bind(&lease.worker_id)
            .bind(lease.attempt as i32)
            .bind(duration)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(QueueError::LeaseLost { id: lease.id, attempt: lease.attempt });
        }
        sqlx::query(
            "DELETE FROM ai_transcription_segments WHERE transcription_id IN \
             (SELECT id FROM ai_call_transcriptions WHERE call_recording_id = $1)",
        )
        .bind(lease.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM ai_call_transcriptions WHERE call_recording_id = $1")
            .bind(lease.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ai_call_analyses WHERE call_recording_id = $1")
            .bind(lease.id)
            .execute(&mut *tx)
            .await?;
        write_results(&mut tx, lease.id, results).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retry(&self, lease: &Lease, error: &str, delay: Duration) -> Result<bool, QueueError> {
        let set = format!(
            "processing_status = 'pending', heartbeat_at = NULL, last_error = $4, \
             available_at = {NOW} + make_interval(secs => $5)"
        );
        self.set_held(lease, &set, vec![Bind::Text(super::clip_error(error)), Bind::Float(delay.as_secs_f64())]).await
    }

    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, QueueError> {
        let set = format!(
            "processing_status = 'failed', heartbeat_at = NULL, last_error = $4, processing_completed_at = {NOW}"
        );
        self.set_held(lease, &set, vec![Bind::Text(super::clip_error(error))]).await
    }

    async fn release(&self, lease: &Lease) -> Result<bool, QueueError> {
        let set = "processing_status = 'pending', heartbeat_at = NULL, processing_started_at = NULL, \
                   attempts = GREATEST(attempts - 1, 0)";
        self.set_held(lease, set, vec![]).await
    }

    async fn rescue_stale(&self, stale_after: Duration, default_max: u32) -> Result<RescueCounts, QueueError> {
        let stale = format!(
            "processing_status = 'processing' \
             AND COALESCE(heartbeat_at, processing_started_at, updated_at) < {NOW} - make_interval(secs => $1)"
        );
        let failed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_call_recordings SET processing_status = 'failed', heartbeat_at = NULL, \
                 processing_completed_at = {NOW}, updated_at = {NOW}, \
                 last_error = 'abandoned: worker ' || COALESCE(worker_id, '?') || \
                     ' stopped heartbeating during attempt ' || attempts || ' of ' || COALESCE(max_attempts, $2) \
             WHERE {stale} AND attempts >= COALESCE(max_attempts, $2)"
        )))
        .bind(stale_after.as_secs_f64())
        .bind(default_max as i32)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let requeued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_call_recordings SET processing_status = 'pending', heartbeat_at = NULL, \
                 available_at = {NOW}, updated_at = {NOW}, \
                 last_error = 'rescued: worker ' || COALESCE(worker_id, '?') || \
                     ' stopped heartbeating during attempt ' || attempts \
             WHERE {stale} AND attempts < COALESCE(max_attempts, $2)"
        )))
        .bind(stale_after.as_secs_f64())
        .bind(default_max as i32)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(RescueCounts { requeued, failed })
    }

    async fn requeue_failed(&self, id: Option<i64>) -> Result<u64, QueueError> {
        let sql = format!(
            "UPDATE ai_call_recordings SET processing_status = 'pending', attempts = 0, available_at = NULL, \
                 last_error = NULL, processing_completed_at = NULL, updated_at = {NOW} \
             WHERE processing_status = 'failed' AND ($1::int8 IS NULL OR id = $1::int8)"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).execute(&self.pool).await?.rows_affected())
    }

    async fn reprocess(&self, selector: &Selector) -> Result<u64, QueueError> {
        let cond = match selector {
            Selector::Id(_) => "id = $1",
            Selector::ApexId(_) => "apex_id = $1",
        };
        let sql = format!(
            "UPDATE ai_call_recordings SET processing_status = 'pending', attempts = 0, available_at = NULL, \
                 last_error = NULL, processing_started_at = NULL, processing_completed_at = NULL, updated_at = {NOW} \
             WHERE {cond} AND processing_status <> 'processing'"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql));
        let q = match selector {
            Selector::Id(id) => q.bind(*id),
            Selector::ApexId(a) => q.bind(a.clone()),
        };
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    async fn stats(&self) -> Result<Stats, QueueError> {
        let mut s = Stats::default();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT processing_status::text, COUNT(*) FROM ai_call_recordings GROUP BY processing_status",
        )
        .fetch_all(&self.pool)
        .await?;
        for (status, n) in rows {
            s.set_count(&status, count(n));
        }
        let sql = format!(
            "SELECT \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'pending' AND available_at > {NOW}), \
               (SELECT EXTRACT(EPOCH FROM ({NOW} - MIN(COALESCE(created_at, updated_at))))::float8 \
                  FROM ai_call_recordings WHERE processing_status = 'pending'), \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'completed' \
                  AND processing_completed_at >= {NOW} - interval '1 hour'), \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'failed' \
                  AND updated_at >= {NOW} - interval '1 hour')"
        );
        let (deferred, oldest, done_h, failed_h): (i64, Option<f64>, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await?;
        s.deferred = count(deferred);
        s.oldest_pending_age_seconds = oldest;
        s.completed_last_hour = count(done_h);
        s.failed_last_hour = count(failed_h);
        let errors: Vec<(String, i64)> = sqlx::query_as(
            "SELECT last_error, COUNT(*) FROM ai_call_recordings \
             WHERE processing_status = 'failed' AND last_error IS NOT NULL \
             GROUP BY last_error ORDER BY COUNT(*) DESC, last_error LIMIT 5",
        )
        .fetch_all(&self.pool)
        .await?;
        s.top_errors = errors.into_iter().map(|(error, n)| ErrorCount { error, count: count(n) }).collect();
        Ok(s)
    }

    async fn enqueue(&self, rec: &NewRecording) -> Result<i64, QueueError> {
        let sql = format!(
            "INSERT INTO ai_call_recordings (apex_id, file_path, priority, metadata, processing_status, attempts, \
                 created_at, updated_at) \
             VALUES ($1, $2, $3, $4::jsonb, 'pending', 0, {NOW}, {NOW}) RETURNING id::int8"
        );
        let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(&rec.apex_id)
            .bind(&rec.file_path)
            .bind(rec.priority)
            .bind(rec.metadata.as_ref().map(|m| m.to_string()))
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn list(&self, id: Option<i64>, limit: u32) -> Result<Vec<RecordingView>, QueueError> {
        let rows = sqlx::query(
            "SELECT r.id::int8, r.apex_id::text, r.file_path::text, r.processing_status::text, r.attempts::int8, \
                 r.worker_id::text, r.last_error, (r.metadata::jsonb ->> 'duration')::float8, \
                 (SELECT COUNT(*) FROM ai_call_analyses a WHERE a.call_recording_id = r.id) \
             FROM ai_call_recordings r WHERE ($1::int8 IS NULL OR r.id = $1::int8) ORDER BY r.id LIMIT $2",
        )
        .bind(id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RecordingView {
                id: r.get(0),
                apex_id: r.get(1),
                file_path: r.get(2),
                status: r.get(3),
                attempts: r.get(4),
                worker_id: r.get(5),
                last_error: r.get(6),
                duration: r.get(7),
                analyses: r.get(8),
            })
            .collect())
    }

    async fn results(&self, id: i64) -> Result<super::StoredResults, QueueError> {
        let mut out = super::StoredResults::default();
        let t: Option<(i64, Option<String>, Option<String>, Option<f64>, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id::int8, full_transcript, language::text, language_probability, model_name::text, metadata::text FROM ai_call_transcriptions WHERE call_recording_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((tid, text, language, language_probability, model_name, metadata)) = t {
            let rows: Vec<(i64, Option<String>, f64, f64, String, Option<String>)> = sqlx::query_as(
                "SELECT segment_index::int8, speaker::text, start_time, end_time, text, words::text FROM ai_transcription_segments WHERE transcription_id = $1 ORDER BY segment_index",
            )
            .bind(tid)
            .fetch_all(&self.pool)
            .await?;
            out.transcript = Some(super::StoredTranscript {
                full_transcript: text.unwrap_or_default(),
                language,
                language_probability,
                model_name,
                metadata: super::json(metadata),
                segments: rows
                    .into_iter()
                    .map(|(index, speaker, start, end, text, words)| super::StoredSegment {
                        index,
                        speaker,
                        start,
                        end,
                        text,
                        words: super::json(words).unwrap_or(serde_json::Value::Null),
                    })
                    .collect(),
            });
        }
        let a: Option<super::AnalysisRow> = sqlx::query_as(
            "SELECT speaker_metrics::text, audio_quality_score, summary, sentiment_label::text, quality_score, outcome::text, engine::text, model_name::text FROM ai_call_analyses WHERE call_recording_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((metrics, score, summary, label, quality, outcome, engine, model)) = a {
            out.speaker_metrics = super::json(metrics);
            out.audio_quality_score = score;
            out.summary = summary;
            out.sentiment_label = label;
            out.quality_score = quality;
            out.outcome = outcome;
            out.engine = engine;
            out.model_name = model;
        }
        Ok(out)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The result rows of a completing job (old ones were deleted in the same transaction).
async fn write_results(conn: &mut sqlx::PgConnection, id: i64, results: &JobResults) -> Result<(), QueueError> {
    if let Some(a) = super::AnalysisValues::of(id, results) {
        let sql = format!(
            "INSERT INTO ai_call_analyses ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15, $16::jsonb, $17, \
                 $18::jsonb, $19, $20, $21::jsonb, $22::jsonb, $23::jsonb, $24::jsonb, {NOW}, {NOW})",
            super::ANALYSIS_COLUMNS
        );
        super::bind_analysis!(sqlx::query(sqlx::AssertSqlSafe(sql)), a).execute(&mut *conn).await?;
    }
    let (Some(t), Some(transcript)) = (super::TranscriptValues::of(id, results), &results.transcript) else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO ai_call_transcriptions ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, {NOW}, {NOW}) RETURNING id::int8",
        super::TRANSCRIPTION_COLUMNS
    );
    let tid: i64 =
        super::bind_transcript!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), t).fetch_one(&mut *conn).await?;
    for chunk in super::segment_rows(transcript).chunks(super::SEGMENT_BATCH) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "INSERT INTO ai_transcription_segments ({}) ",
            super::SEGMENT_COLUMNS
        ));
        qb.push_values(chunk, |mut b, r| super::push_segment!(b, tid, r, "::jsonb", NOW));
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
