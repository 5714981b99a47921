//! SQLite backend, the embedded default. WAL mode and a busy timeout let several
//! worker processes on one machine share the file; a claim is one autocommit
//! `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`, which SQLite's single
//! writer lock makes atomic (measured fairer between workers than `BEGIN
//! IMMEDIATE`). Times are UTC text with milliseconds, which compares as time.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Row};

use super::schema;
use super::{attempts, Dialect, Job, JobResults, Lease, QueueError, Val};
use crate::config::{Backend, DatabaseConfig};

const DIALECT: Dialect = Dialect { backend: Backend::Sqlite };

/// The id of the row an `INSERT … RETURNING id` made.
async fn insert_id(conn: &mut sqlx::SqliteConnection, sql: String, vals: Vec<Val>) -> Result<i64, QueueError> {
    Ok(super::bind_vals!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), vals).fetch_one(&mut *conn).await?)
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

    async fn exec_held(&self, (sql, vals): (String, Vec<Val>)) -> Result<bool, QueueError> {
        let q = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals);
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn insert_returning_id(&self, sql: String, vals: Vec<Val>) -> Result<i64, QueueError> {
        let sql = format!("{sql} RETURNING id");
        Ok(super::bind_vals!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), vals).fetch_one(&self.pool).await?)
    }

    /// SQLite is migrated on open, so the table is there (the embedded schema is ours).
    async fn has_segments_table(&self) -> Result<bool, QueueError> {
        self.table_exists(schema::SEGMENTS).await
    }

    async fn table_exists(&self, name: &str) -> Result<bool, QueueError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn columns(&self) -> Result<Vec<(String, String)>, QueueError> {
        self.columns_on(&mut *self.pool.acquire().await?).await
    }
}

super::impl_queue!(SqliteQueue, {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        // BEGIN IMMEDIATE takes the write lock first, so two migrators serialise.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let did = super::converge_schema!(
            tx,
            Backend::Sqlite,
            columns: self.columns_on(&mut tx).await?,
            index_exists: |name| sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
            )
            .bind(name)
            .fetch_one(&mut *tx)
            .await?
                > 0
        );
        tx.commit().await?;
        Ok(did)
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        Ok(schema::missing(&self.columns().await?))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let now = DIALECT.now();
        let sql = format!(
            "UPDATE {r} SET processing_status = 'processing', crashes = {crashes}, attempts = {next}, \
                 processing_stage = 'claimed', \
                 worker_id = ?, lease_token = lower(hex(randomblob(16))), processing_started_at = {now}, \
                 heartbeat_at = {now}, processing_completed_at = NULL, updated_at = {now} \
             WHERE id IN (SELECT id FROM {r} WHERE {claimable} ORDER BY {order} LIMIT ?) \
             RETURNING id, apex_id, r2_path, r2_bucket, file_format, priority, attempts, max_attempts, lease_token, \
                 crashes, campaign_type, direction, client_ref",
            r = schema::RECORDINGS,
            next = super::NEXT_ATTEMPT,
            crashes = super::CRASHES_AT_CLAIM,
            claimable = super::claimable(DIALECT),
            order = super::CLAIM_ORDER,
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id).bind(n as i64).fetch_all(&self.pool).await?;
        // SQLite stores whatever the app wrote (a priority of 'high', a BLOB path):
        // a row that cannot be read is failed with the column named, and the
        // worker goes on, instead of panicking after the row was claimed.
        let mut jobs: Vec<Job> = Vec::new();
        for r in rows {
            let id: i64 = r.try_get(0)?;
            match decode_job(&r, worker_id) {
                Ok(job) => jobs.push(job),
                Err(problem) => {
                    tracing::error!(job.id = id, %problem, "claimed row cannot be read; failing it");
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {} SET processing_status = 'failed', processing_error = ?, heartbeat_at = NULL, \
                             processing_completed_at = {now}, updated_at = {now} \
                         WHERE id = ? AND worker_id = ? AND processing_status = 'processing'",
                        schema::RECORDINGS
                    )))
                    .bind(super::clip_error(&format!("the row cannot be read: {problem}")))
                    .bind(id)
                    .bind(worker_id)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        jobs.sort_by_key(|j| (-j.priority, j.id));
        Ok(jobs)
    }

    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError> {
        // Take the write lock up front (a deferred transaction that reads first could
        // fail to upgrade under concurrent writers), through sqlx's transaction: a
        // dropped future or a failed commit rolls back instead of returning a
        // connection that is still inside a transaction to the pool.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The embedded schema is ours: `ai_call_segments` is always there.
        let written: Result<(), QueueError> =
            async { super::write_results!(tx, lease, results, true, sqlx::Sqlite, "") }.await;
        match written {
            Ok(()) => Ok(tx.commit().await?),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
});

/// A claimed row as a [`Job`], or which column could not be read and why.
fn decode_job(r: &sqlx::sqlite::SqliteRow, worker_id: &str) -> Result<Job, String> {
    fn col<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
        r: &'r sqlx::sqlite::SqliteRow,
        name: &str,
    ) -> Result<T, String> {
        r.try_get(name).map_err(|e| match e {
            sqlx::Error::ColumnDecode { source, .. } => {
                format!("column `{name}` holds a value of the wrong type ({source})")
            }
            other => format!("column `{name}`: {other}"),
        })
    }
    let id: i64 = col(r, "id")?;
    let attempt = attempts(col::<i64>(r, "attempts")?);
    Ok(Job {
        id,
        apex_id: col(r, "apex_id")?,
        r2_path: col(r, "r2_path")?,
        r2_bucket: col(r, "r2_bucket")?,
        file_format: col(r, "file_format")?,
        priority: i32::try_from(col::<i64>(r, "priority")?)
            .map_err(|_| "column `priority` is out of range".to_string())?,
        attempts: attempt,
        max_attempts: col::<Option<i64>>(r, "max_attempts")?.map(attempts),
        crashes: attempts(col::<i64>(r, "crashes")?),
        // Context the app may have written as a number: read as text, or left out.
        context: super::CallContext {
            campaign_type: r.try_get::<Option<String>, _>("campaign_type").ok().flatten(),
            direction: r.try_get::<Option<String>, _>("direction").ok().flatten(),
            client_ref: r.try_get::<Option<String>, _>("client_ref").ok().flatten(),
        },
        lease: Lease { id, worker_id: worker_id.to_string(), attempt, token: col(r, "lease_token")? },
    })
}

impl SqliteQueue {
    async fn columns_on(&self, conn: &mut sqlx::SqliteConnection) -> Result<Vec<(String, String)>, QueueError> {
        let mut present = Vec::new();
        for table in [schema::RECORDINGS, schema::TRANSCRIPTIONS, schema::SEGMENTS, schema::ANALYSIS] {
            let cols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?)").bind(table).fetch_all(&mut *conn).await?;
            present.extend(cols.into_iter().map(|c| (table.to_string(), c)));
        }
        Ok(present)
    }
}
