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
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(schema::SEGMENTS)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn columns(&self) -> Result<Vec<(String, String)>, QueueError> {
        let mut present = Vec::new();
        for table in [schema::RECORDINGS, schema::TRANSCRIPTIONS, schema::SEGMENTS, schema::ANALYSIS] {
            let cols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?)").bind(table).fetch_all(&self.pool).await?;
            present.extend(cols.into_iter().map(|c| (table.to_string(), c)));
        }
        Ok(present)
    }
}

super::impl_queue!(SqliteQueue, {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        // BEGIN IMMEDIATE takes the write lock first, so two migrators serialise.
        conn.execute("BEGIN IMMEDIATE").await?;
        let result = async {
            let mut did = Vec::new();
            let before = self.columns_on(&mut conn).await?;
            for stmt in schema::statements(schema::create_tables(Backend::Sqlite)) {
                conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
            }
            for t in [schema::RECORDINGS, schema::TRANSCRIPTIONS, schema::SEGMENTS, schema::ANALYSIS] {
                if !before.iter().any(|(x, _)| x == t) {
                    did.push(format!("created table {t}"));
                }
            }
            for stmt in schema::add_column_statements(Backend::Sqlite, &self.columns_on(&mut conn).await?) {
                conn.execute(sqlx::AssertSqlSafe(stmt.clone())).await?;
                did.push(stmt);
            }
            for (name, stmt) in schema::index_statements(Backend::Sqlite) {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?")
                    .bind(name)
                    .fetch_one(&mut *conn)
                    .await?;
                if n == 0 {
                    conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
                    did.push(format!("created index {name}"));
                }
            }
            Ok::<_, QueueError>(did)
        }
        .await;
        match result {
            Ok(did) => {
                conn.execute("COMMIT").await?;
                Ok(did)
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        Ok(schema::missing(&self.columns().await?))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let now = DIALECT.now();
        let sql = format!(
            "UPDATE {r} SET processing_status = 'processing', attempts = {next}, \
                 worker_id = ?, processing_started_at = {now}, heartbeat_at = {now}, \
                 processing_completed_at = NULL, updated_at = {now} \
             WHERE id IN (SELECT id FROM {r} WHERE {claimable} ORDER BY {order} LIMIT ?) \
             RETURNING id, apex_id, r2_path, r2_bucket, file_format, priority, attempts, max_attempts",
            r = schema::RECORDINGS,
            next = super::NEXT_ATTEMPT,
            claimable = super::claimable(DIALECT),
            order = super::CLAIM_ORDER,
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id).bind(n as i64).fetch_all(&self.pool).await?;
        let mut jobs: Vec<Job> = rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let attempt = attempts(r.get::<i64, _>(6));
                Job {
                    id,
                    apex_id: r.get(1),
                    r2_path: r.get(2),
                    r2_bucket: r.get(3),
                    file_format: r.get(4),
                    priority: r.get::<i64, _>(5) as i32,
                    attempts: attempt,
                    max_attempts: r.get::<Option<i64>, _>(7).map(attempts),
                    lease: Lease { id, worker_id: worker_id.to_string(), attempt },
                }
            })
            .collect();
        jobs.sort_by_key(|j| (-j.priority, j.id));
        Ok(jobs)
    }

    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError> {
        let mut conn = self.pool.acquire().await?;
        // Take the write lock up front: a deferred transaction that reads first could
        // fail to upgrade under concurrent writers.
        conn.execute("BEGIN IMMEDIATE").await?;
        // The embedded schema is ours: `ai_call_segments` is always there.
        let written: Result<(), QueueError> =
            async { super::write_results!(conn, lease, results, true, sqlx::Sqlite, "") }.await;
        match written {
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
});

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
