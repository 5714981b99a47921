//! SQLite backend, the embedded default. WAL mode and a busy timeout let several
//! worker processes on one machine share the file; a claim is one autocommit
//! `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`, which SQLite's single
//! writer lock makes atomic (measured fairer between workers than `BEGIN
//! IMMEDIATE`). Times are UTC text with milliseconds, which compares as time.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Row};

use super::schema;
use super::{attempts, count, Job, JobResults, Lease, NewRecording, Queue, QueueError, RecordingView};
use super::{ErrorCount, RescueCounts, Selector, Stats};
use crate::config::{Backend, DatabaseConfig};

const NOW: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";

/// `now` shifted by the modifier bound at this place (see [`offset`]).
const NOW_PLUS: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now', ?)";

const HELD: &str = "id = ? AND processing_status = 'processing' AND worker_id = ? AND attempts = ?";

/// A SQLite date modifier shifting by `secs` seconds.
fn offset(secs: f64) -> String {
    format!("{secs:+.3} seconds")
}

pub struct SqliteQueue {
    pool: SqlitePool,
}

impl SqliteQueue {
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, QueueError> {
        let opts = SqliteConnectOptions::from_str(cfg.url.expose())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.connect_timeout)
            .connect_with(opts)
            .await?;
        Ok(SqliteQueue { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn set_held(&self, lease: &Lease, set: &str, pre: Vec<String>) -> Result<bool, QueueError> {
        let sql = format!("UPDATE ai_call_recordings SET {set}, updated_at = {NOW} WHERE {HELD}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in pre {
            q = q.bind(b);
        }
        let q = q.bind(lease.id).bind(&lease.worker_id).bind(lease.attempt as i64);
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {} (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)",
            schema::MIGRATIONS_TABLE
        )))
        .await?;
        let mut applied = Vec::new();
        for (version, sql) in schema::migrations(Backend::Sqlite) {
            // BEGIN IMMEDIATE takes the write lock first, so two migrators serialise.
            conn.execute("BEGIN IMMEDIATE").await?;
            let result = async {
                let done: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT version FROM {} WHERE version = ?",
                    schema::MIGRATIONS_TABLE
                )))
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
                if done.is_some() {
                    return Ok::<_, QueueError>(false);
                }
                for stmt in schema::statements(sql) {
                    conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {} (version, applied_at) VALUES (?, {NOW})",
                    schema::MIGRATIONS_TABLE
                )))
                .bind(version)
                .execute(&mut *conn)
                .await?;
                Ok(true)
            }
            .await;
            match result {
                Ok(did) => {
                    conn.execute("COMMIT").await?;
                    if did {
                        applied.push(version.to_string());
                    }
                }
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        Ok(applied)
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        let mut present = Vec::new();
        for (table, _) in schema::REQUIRED_COLUMNS {
            let cols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?)").bind(*table).fetch_all(&self.pool).await?;
            present.extend(cols.into_iter().map(|c| (table.to_string(), c)));
        }
        Ok(schema::missing(&present))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let sql = format!(
            "UPDATE ai_call_recordings SET processing_status = 'processing', attempts = attempts + 1, \
                 worker_id = ?, processing_started_at = {NOW}, heartbeat_at = {NOW}, \
                 processing_completed_at = NULL, updated_at = {NOW} \
             WHERE id IN (SELECT id FROM ai_call_recordings \
                   WHERE processing_status = 'pending' AND (available_at IS NULL OR available_at <= {NOW}) \
                   ORDER BY priority DESC, id LIMIT ?) \
             RETURNING id, apex_id, file_path, priority, attempts, max_attempts"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id).bind(n as i64).fetch_all(&self.pool).await?;
        let mut jobs: Vec<Job> = rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let attempt = attempts(r.get::<i64, _>(4));
                Job {
                    id,
                    apex_id: r.get(1),
                    file_path: r.get(2),
                    priority: r.get::<i64, _>(3) as i32,
                    attempts: attempt,
                    max_attempts: r.get::<Option<i64>, _>(5).map(attempts),
                    lease: Lease { id, worker_id: worker_id.to_string(), attempt },
                }
            })
            .collect();
        jobs.sort_by_key(|j| (-j.priority, j.id));
        Ok(jobs)
    }

    async fn heartbeat(&self, lease: &Lease) -> Result<bool, QueueError> {
        self.set_held(lease, &format!("heartbeat_at = {NOW}"), vec![]).await
    }

    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError> {
        let mut conn = self.pool.acquire().await?;
        // Take the write lock up front: a deferred transaction that reads first could
        // fail to upgrade under concurrent writers.
        conn.execute("BEGIN IMMEDIATE").await?;
        let result = async {
            let duration = results.audio.as_ref().map(|a| a.duration_seconds);
            let sql = format!(
                "UPDATE ai_call_recordings SET processing_status = 'completed', processing_completed_at = {NOW}, \
                     heartbeat_at = NULL, last_error = NULL, updated_at = {NOW}, \
                     metadata = CASE WHEN ? IS NULL THEN metadata \
                         ELSE json_set(COALESCE(metadata, '{{}}'), '$.duration', ?) END \
                 WHERE {HELD}"
            );
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(duration)
                .bind(duration)
                .bind(lease.id)
                .bind(&lease.worker_id)
                .bind(lease.attempt as i64)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() != 1 {
                return Err(QueueError::LeaseLost { id: lease.id, attempt: lease.attempt });
            }
            sqlx::query(
                "DELETE FROM ai_transcription_segments WHERE transcription_id IN \
                 (SELECT id FROM ai_call_transcriptions WHERE call_recording_id = ?)",
            )
            .bind(lease.id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM ai_call_transcriptions WHERE call_recording_id = ?")
                .bind(lease.id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM ai_call_analyses WHERE call_recording_id = ?")
                .bind(lease.id)
                .execute(&mut *conn)
                .await?;
            write_results(&mut conn, lease.id, results).await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                conn.execute("COMMIT").await?;
                Ok(())
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn retry(&self, lease: &Lease, error: &str, delay: Duration) -> Result<bool, QueueError> {
        let set =
            format!("processing_status = 'pending', heartbeat_at = NULL, last_error = ?, available_at = {NOW_PLUS}");
        self.set_held(lease, &set, vec![super::clip_error(error), offset(delay.as_secs_f64())]).await
    }

    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, QueueError> {
        let set = format!(
            "processing_status = 'failed', heartbeat_at = NULL, last_error = ?, processing_completed_at = {NOW}"
        );
        self.set_held(lease, &set, vec![super::clip_error(error)]).await
    }

    async fn release(&self, lease: &Lease) -> Result<bool, QueueError> {
        let set = "processing_status = 'pending', heartbeat_at = NULL, processing_started_at = NULL, \
                   attempts = MAX(attempts - 1, 0)";
        self.set_held(lease, set, vec![]).await
    }

    async fn rescue_stale(&self, stale_after: Duration, default_max: u32) -> Result<RescueCounts, QueueError> {
        let stale = format!(
            "processing_status = 'processing' \
             AND COALESCE(heartbeat_at, processing_started_at, updated_at) < {NOW_PLUS}"
        );
        let cutoff = offset(-stale_after.as_secs_f64());
        let failed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_call_recordings SET processing_status = 'failed', heartbeat_at = NULL, \
                 processing_completed_at = {NOW}, updated_at = {NOW}, \
                 last_error = 'abandoned: worker ' || COALESCE(worker_id, '?') || \
                     ' stopped heartbeating during attempt ' || attempts || ' of ' || COALESCE(max_attempts, ?) \
             WHERE {stale} AND attempts >= COALESCE(max_attempts, ?)"
        )))
        .bind(default_max as i64)
        .bind(&cutoff)
        .bind(default_max as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let requeued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_call_recordings SET processing_status = 'pending', heartbeat_at = NULL, \
                 available_at = {NOW}, updated_at = {NOW}, \
                 last_error = 'rescued: worker ' || COALESCE(worker_id, '?') || \
                     ' stopped heartbeating during attempt ' || attempts \
             WHERE {stale} AND attempts < COALESCE(max_attempts, ?)"
        )))
        .bind(&cutoff)
        .bind(default_max as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(RescueCounts { requeued, failed })
    }

    async fn requeue_failed(&self, id: Option<i64>) -> Result<u64, QueueError> {
        let sql = format!(
            "UPDATE ai_call_recordings SET processing_status = 'pending', attempts = 0, available_at = NULL, \
                 last_error = NULL, processing_completed_at = NULL, updated_at = {NOW} \
             WHERE processing_status = 'failed' AND (? IS NULL OR id = ?)"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(id).execute(&self.pool).await?.rows_affected())
    }

    async fn reprocess(&self, selector: &Selector) -> Result<u64, QueueError> {
        let cond = match selector {
            Selector::Id(_) => "id = ?",
            Selector::ApexId(_) => "apex_id = ?",
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
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT processing_status, COUNT(*) FROM ai_call_recordings GROUP BY processing_status")
                .fetch_all(&self.pool)
                .await?;
        for (status, n) in rows {
            s.set_count(&status, count(n));
        }
        let hour_ago = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')";
        let sql = format!(
            "SELECT \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'pending' AND available_at > {NOW}), \
               (SELECT (julianday('now') - julianday(MIN(COALESCE(created_at, updated_at)))) * 86400.0 \
                  FROM ai_call_recordings WHERE processing_status = 'pending'), \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'completed' \
                  AND processing_completed_at >= {hour_ago}), \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'failed' \
                  AND updated_at >= {hour_ago})"
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
             VALUES (?, ?, ?, ?, 'pending', 0, {NOW}, {NOW}) RETURNING id"
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
            "SELECT r.id, r.apex_id, r.file_path, r.processing_status, r.attempts, r.worker_id, r.last_error, \
                 CAST(json_extract(r.metadata, '$.duration') AS REAL), \
                 (SELECT COUNT(*) FROM ai_call_analyses a WHERE a.call_recording_id = r.id) \
             FROM ai_call_recordings r WHERE (? IS NULL OR r.id = ?) ORDER BY r.id LIMIT ?",
        )
        .bind(id)
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
            sqlx::query_as("SELECT id, full_transcript, language, language_probability, model_name, metadata FROM ai_call_transcriptions WHERE call_recording_id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((tid, text, language, language_probability, model_name, metadata)) = t {
            let rows: Vec<(i64, Option<String>, f64, f64, String, Option<String>)> = sqlx::query_as(
                "SELECT segment_index, speaker, start_time, end_time, text, words FROM ai_transcription_segments WHERE transcription_id = ? ORDER BY segment_index",
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
            "SELECT speaker_metrics, audio_quality_score, summary, sentiment_label, quality_score, outcome, engine, model_name FROM ai_call_analyses WHERE call_recording_id = ?",
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
async fn write_results(conn: &mut sqlx::SqliteConnection, id: i64, results: &JobResults) -> Result<(), QueueError> {
    if let Some(a) = super::AnalysisValues::of(id, results) {
        let sql = format!(
            "INSERT INTO ai_call_analyses ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {NOW}, {NOW})",
            super::ANALYSIS_COLUMNS
        );
        super::bind_analysis!(sqlx::query(sqlx::AssertSqlSafe(sql)), a).execute(&mut *conn).await?;
    }
    let (Some(t), Some(transcript)) = (super::TranscriptValues::of(id, results), &results.transcript) else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO ai_call_transcriptions ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {NOW}, {NOW}) RETURNING id",
        super::TRANSCRIPTION_COLUMNS
    );
    let tid: i64 =
        super::bind_transcript!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), t).fetch_one(&mut *conn).await?;
    for chunk in super::segment_rows(transcript).chunks(super::SEGMENT_BATCH) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "INSERT INTO ai_transcription_segments ({}) ",
            super::SEGMENT_COLUMNS
        ));
        qb.push_values(chunk, |mut b, r| super::push_segment!(b, tid, r, "", NOW));
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
