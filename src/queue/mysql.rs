//! MariaDB ≥ 10.6 / MySQL ≥ 8 backend. MariaDB has no `UPDATE … RETURNING` and
//! MySQL rejects an `UPDATE` whose subquery reads the same table, so a claim is a
//! short transaction: `SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED`, then
//! `UPDATE … WHERE id IN (…)`, then `COMMIT`. Integers are read through
//! `CAST(… AS SIGNED)` so Laravel's `BIGINT UNSIGNED` ids and any integer width of
//! the bookkeeping columns decode alike.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, Row};

use super::schema;
use super::{attempts, count, micros, Job, JobResults, Lease, NewRecording, Queue, QueueError, RecordingView};
use super::{ErrorCount, RescueCounts, Selector, Stats};
use crate::config::{Backend, DatabaseConfig};

/// The database's clock in UTC (sqlx also sets the session time zone to UTC).
const NOW: &str = "UTC_TIMESTAMP(6)";

/// The lease condition with the lease bound first: id, worker, attempt.
const HELD: &str = "id = ? AND processing_status = 'processing' AND worker_id = ? AND attempts = ?";

pub struct MySqlQueue {
    pool: MySqlPool,
}

impl MySqlQueue {
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, QueueError> {
        let opts = MySqlConnectOptions::from_str(cfg.url.expose())?;
        let pool = MySqlPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.connect_timeout)
            // READ COMMITTED takes no gap locks: under REPEATABLE READ, concurrent
            // claims deadlock on the status index (seen with 4 workers on MariaDB).
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(MySqlQueue { pool })
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    async fn claim_once(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "SELECT CAST(id AS SIGNED), apex_id, file_path, CAST(priority AS SIGNED), CAST(attempts AS SIGNED), \
                 CAST(max_attempts AS SIGNED) \
             FROM ai_call_recordings \
             WHERE processing_status = 'pending' AND (available_at IS NULL OR available_at <= {NOW}) \
             ORDER BY priority DESC, id LIMIT ? FOR UPDATE SKIP LOCKED"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n as i64).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let jobs: Vec<Job> = rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let attempt = attempts(r.get::<i64, _>(4)) + 1;
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
        let sql = format!(
            "UPDATE ai_call_recordings SET processing_status = 'processing', attempts = attempts + 1, \
                 worker_id = ?, processing_started_at = {NOW}, heartbeat_at = {NOW}, \
                 processing_completed_at = NULL, updated_at = {NOW} \
             WHERE id IN ({})",
            placeholders(jobs.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id);
        for j in &jobs {
            q = q.bind(j.id);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// `UPDATE … SET {set} WHERE` held by `lease`; `pre` binds come before the lease.
    async fn set_held(&self, lease: &Lease, set: &str, pre: Vec<Bind>) -> Result<bool, QueueError> {
        let sql = format!("UPDATE ai_call_recordings SET {set}, updated_at = {NOW} WHERE {HELD}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in pre {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let q = q.bind(lease.id).bind(&lease.worker_id).bind(lease.attempt as i64);
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// InnoDB chose this transaction as a deadlock victim (or a lock wait timed out).
fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001") | Some("HY000"))
        && (d.message().contains("Deadlock") || d.message().contains("Lock wait timeout")))
}

/// Whether one of the indexes, given as `(index, position, column, collation)`
/// rows of `information_schema.statistics`, serves `WHERE processing_status = ?
/// ORDER BY priority DESC, id`: status first, then priority descending (`D`);
/// InnoDB appends the primary key `id` to every secondary index.
fn serves_claim_order(stats: &[(String, u32, String, Option<String>)]) -> bool {
    let mut names: Vec<&str> = stats.iter().map(|s| s.0.as_str()).collect();
    names.dedup();
    names.iter().any(|name| {
        let col = |pos: u32| stats.iter().find(|s| s.0 == *name && s.1 == pos);
        matches!(col(1), Some(c) if c.2.eq_ignore_ascii_case("processing_status"))
            && matches!(col(2), Some(c) if c.2.eq_ignore_ascii_case("priority") && c.3.as_deref() == Some("D"))
            && col(3).is_none_or(|c| c.2.eq_ignore_ascii_case("id") && c.3.as_deref() != Some("D"))
    })
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[async_trait]
impl Queue for MySqlQueue {
    fn backend(&self) -> Backend {
        Backend::Mysql
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        // One migrator at a time across workers (DDL commits implicitly here, so a
        // named lock, not a transaction, guards it).
        sqlx::query("SELECT GET_LOCK('callscribe_migrate', 60)").execute(&mut *conn).await?;
        let result = async {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE IF NOT EXISTS {} (version VARCHAR(64) PRIMARY KEY, applied_at TIMESTAMP(6) NULL)",
                schema::MIGRATIONS_TABLE
            )))
            .await?;
            let mut applied = Vec::new();
            for (version, sql) in schema::migrations(Backend::Mysql) {
                let done: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT CAST(version AS CHAR) FROM {} WHERE version = ?",
                    schema::MIGRATIONS_TABLE
                )))
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
                if done.is_some() {
                    continue;
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
                applied.push(version.to_string());
            }
            Ok::<_, QueueError>(applied)
        }
        .await;
        sqlx::query("SELECT RELEASE_LOCK('callscribe_migrate')").execute(&mut *conn).await?;
        result
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(schema::missing(&rows))
    }

    async fn claim_index_problem(&self) -> Result<Option<String>, QueueError> {
        let stats: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT CAST(index_name AS CHAR), CAST(seq_in_index AS SIGNED), CAST(column_name AS CHAR), \
                 CAST(collation AS CHAR) \
             FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = 'ai_call_recordings' \
             ORDER BY index_name, seq_in_index",
        )
        .fetch_all(&self.pool)
        .await?;
        let stats: Vec<_> = stats.into_iter().map(|(i, p, c, o)| (i, p as u32, c, o)).collect();
        Ok((!serves_claim_order(&stats)).then(|| {
            "no index on ai_call_recordings (processing_status, priority DESC): each claim sorts and locks every \
             due row, so concurrent workers skip them all and wait; run `callscribe migrate` \
             (descending keys need MariaDB >= 10.8 or MySQL >= 8)"
                .to_string()
        }))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        // A deadlock victim lost nothing: its transaction rolled back. Try again.
        let mut tries = 0;
        loop {
            match self.claim_once(worker_id, n).await {
                Err(QueueError::Database(e)) if is_deadlock(&e) && tries < 5 => tries += 1,
                other => return other,
            }
        }
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
                 metadata = IF(? IS NULL, metadata, JSON_SET(COALESCE(metadata, '{{}}'), '$.duration', ?)) \
             WHERE {HELD}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(duration)
            .bind(duration)
            .bind(lease.id)
            .bind(&lease.worker_id)
            .bind(lease.attempt as i64)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(QueueError::LeaseLost { id: lease.id, attempt: lease.attempt });
        }
        sqlx::query(
            "DELETE FROM ai_transcription_segments WHERE transcription_id IN \
             (SELECT id FROM ai_call_transcriptions WHERE call_recording_id = ?)",
        )
        .bind(lease.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM ai_call_transcriptions WHERE call_recording_id = ?")
            .bind(lease.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ai_call_analyses WHERE call_recording_id = ?")
            .bind(lease.id)
            .execute(&mut *tx)
            .await?;
        write_results(&mut tx, lease.id, results).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retry(&self, lease: &Lease, error: &str, delay: Duration) -> Result<bool, QueueError> {
        let set = format!(
            "processing_status = 'pending', heartbeat_at = NULL, last_error = ?, \
             available_at = {NOW} + INTERVAL ? MICROSECOND"
        );
        self.set_held(lease, &set, vec![Bind::Text(super::clip_error(error)), Bind::Int(micros(delay))]).await
    }

    async fn fail(&self, lease: &Lease, error: &str) -> Result<bool, QueueError> {
        let set = format!(
            "processing_status = 'failed', heartbeat_at = NULL, last_error = ?, processing_completed_at = {NOW}"
        );
        self.set_held(lease, &set, vec![Bind::Text(super::clip_error(error))]).await
    }

    async fn release(&self, lease: &Lease) -> Result<bool, QueueError> {
        let set = "processing_status = 'pending', heartbeat_at = NULL, processing_started_at = NULL, \
                   attempts = IF(attempts > 0, attempts - 1, 0)";
        self.set_held(lease, set, vec![]).await
    }

    async fn rescue_stale(&self, stale_after: Duration, default_max: u32) -> Result<RescueCounts, QueueError> {
        let stale = format!(
            "processing_status = 'processing' \
             AND COALESCE(heartbeat_at, processing_started_at, updated_at) < {NOW} - INTERVAL ? MICROSECOND"
        );
        let failed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_call_recordings SET processing_status = 'failed', heartbeat_at = NULL, \
                 processing_completed_at = {NOW}, updated_at = {NOW}, \
                 last_error = CONCAT('abandoned: worker ', COALESCE(worker_id, '?'), \
                     ' stopped heartbeating during attempt ', attempts, ' of ', COALESCE(max_attempts, ?)) \
             WHERE {stale} AND attempts >= COALESCE(max_attempts, ?)"
        )))
        .bind(default_max as i64)
        .bind(micros(stale_after))
        .bind(default_max as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let requeued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ai_call_recordings SET processing_status = 'pending', heartbeat_at = NULL, \
                 available_at = {NOW}, updated_at = {NOW}, \
                 last_error = CONCAT('rescued: worker ', COALESCE(worker_id, '?'), \
                     ' stopped heartbeating during attempt ', attempts) \
             WHERE {stale} AND attempts < COALESCE(max_attempts, ?)"
        )))
        .bind(micros(stale_after))
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
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CAST(processing_status AS CHAR), COUNT(*) FROM ai_call_recordings GROUP BY processing_status",
        )
        .fetch_all(&self.pool)
        .await?;
        for (status, n) in rows {
            s.set_count(&status, count(n));
        }
        let sql = format!(
            "SELECT \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'pending' AND available_at > {NOW}), \
               (SELECT CAST(TIMESTAMPDIFF(MICROSECOND, MIN(COALESCE(created_at, updated_at)), {NOW}) AS DOUBLE) / 1e6 \
                  FROM ai_call_recordings WHERE processing_status = 'pending'), \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'completed' \
                  AND processing_completed_at >= {NOW} - INTERVAL 1 HOUR), \
               (SELECT COUNT(*) FROM ai_call_recordings WHERE processing_status = 'failed' \
                  AND updated_at >= {NOW} - INTERVAL 1 HOUR)"
        );
        let (deferred, oldest, done_h, failed_h): (i64, Option<f64>, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await?;
        s.deferred = count(deferred);
        s.oldest_pending_age_seconds = oldest;
        s.completed_last_hour = count(done_h);
        s.failed_last_hour = count(failed_h);
        let errors: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CAST(last_error AS CHAR), COUNT(*) FROM ai_call_recordings \
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
             VALUES (?, ?, ?, ?, 'pending', 0, {NOW}, {NOW})"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&rec.apex_id)
            .bind(&rec.file_path)
            .bind(rec.priority)
            .bind(rec.metadata.as_ref().map(|m| m.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(done.last_insert_id() as i64)
    }

    async fn list(&self, id: Option<i64>, limit: u32) -> Result<Vec<RecordingView>, QueueError> {
        let rows = sqlx::query(
            "SELECT CAST(r.id AS SIGNED), r.apex_id, r.file_path, CAST(r.processing_status AS CHAR), \
                 CAST(r.attempts AS SIGNED), r.worker_id, CAST(r.last_error AS CHAR), \
                 CAST(JSON_UNQUOTE(JSON_EXTRACT(r.metadata, '$.duration')) AS DOUBLE), \
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
            sqlx::query_as("SELECT CAST(id AS SIGNED), CAST(full_transcript AS CHAR), language, language_probability, model_name, CAST(metadata AS CHAR) FROM ai_call_transcriptions WHERE call_recording_id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((tid, text, language, language_probability, model_name, metadata)) = t {
            let rows: Vec<(i64, Option<String>, f64, f64, String, Option<String>)> = sqlx::query_as(
                "SELECT CAST(segment_index AS SIGNED), speaker, start_time, end_time, CAST(text AS CHAR), CAST(words AS CHAR) FROM ai_transcription_segments WHERE transcription_id = ? ORDER BY segment_index",
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
        let a: Option<super::AnalysisRow> =
            sqlx::query_as("SELECT CAST(speaker_metrics AS CHAR), audio_quality_score, CAST(summary AS CHAR), sentiment_label, quality_score, outcome, engine, model_name FROM ai_call_analyses WHERE call_recording_id = ?").bind(id).fetch_optional(&self.pool).await?;
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
async fn write_results(conn: &mut sqlx::MySqlConnection, id: i64, results: &JobResults) -> Result<(), QueueError> {
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
        "INSERT INTO ai_call_transcriptions ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {NOW}, {NOW})",
        super::TRANSCRIPTION_COLUMNS
    );
    let tid =
        super::bind_transcript!(sqlx::query(sqlx::AssertSqlSafe(sql)), t).execute(&mut *conn).await?.last_insert_id()
            as i64;
    for chunk in super::segment_rows(transcript).chunks(super::SEGMENT_BATCH) {
        let mut qb = sqlx::QueryBuilder::<sqlx::MySql>::new(format!(
            "INSERT INTO ai_transcription_segments ({}) ",
            super::SEGMENT_COLUMNS
        ));
        qb.push_values(chunk, |mut b, r| super::push_segment!(b, tid, r, "", NOW));
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::serves_claim_order;

    fn idx(name: &str, cols: &[(&str, &str)]) -> Vec<(String, u32, String, Option<String>)> {
        cols.iter()
            .enumerate()
            .map(|(i, (c, o))| (name.into(), i as u32 + 1, c.to_string(), Some(o.to_string())))
            .collect()
    }

    #[test]
    fn the_claim_needs_priority_descending_after_the_status() {
        let ascending = idx("claim", &[("processing_status", "A"), ("priority", "A"), ("id", "A")]);
        assert!(!serves_claim_order(&ascending));
        let mut both = ascending.clone();
        both.extend(idx("claim_order", &[("processing_status", "A"), ("priority", "D"), ("id", "A")]));
        assert!(serves_claim_order(&both));
        // The primary key is implied at the end of an InnoDB secondary index.
        assert!(serves_claim_order(&idx("short", &[("processing_status", "A"), ("priority", "D")])));
        assert!(!serves_claim_order(&idx("lifo", &[("processing_status", "A"), ("priority", "D"), ("id", "D")])));
        assert!(!serves_claim_order(&idx("no_status", &[("priority", "D"), ("id", "A")])));
        assert!(!serves_claim_order(&[]));
    }
}
