//! MariaDB ≥ 10.6 / MySQL ≥ 8 backend. MariaDB has no `UPDATE … RETURNING` and
//! MySQL rejects an `UPDATE` whose subquery reads the same table, so a claim is a
//! short transaction: `SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED`, then
//! `UPDATE … WHERE id IN (…)`, then `COMMIT`. Integers are read through
//! `CAST(… AS SIGNED)` so Laravel's `BIGINT UNSIGNED` ids and any integer width of
//! the bookkeeping columns decode alike. sqlx sets the session time zone to UTC;
//! `doctor` warns when the server's own zone (which the app's connection uses
//! unless it sets `'timezone' => '+00:00'`) is not UTC.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, Row};
use tokio::sync::OnceCell;

use super::schema::{self, ColumnInfo};
use super::{attempts, Dialect, Job, JobResults, Lease, QueueError, Val};
use crate::config::{Backend, DatabaseConfig};

const DIALECT: Dialect = Dialect { backend: Backend::Mysql };

/// The id of the row an `INSERT` made (MariaDB has no `RETURNING` on `INSERT`
/// before 10.5 and MySQL none at all).
async fn insert_id(conn: &mut sqlx::MySqlConnection, sql: String, vals: Vec<Val>) -> Result<i64, QueueError> {
    let done = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&mut *conn).await?;
    Ok(done.last_insert_id() as i64)
}

pub struct MySqlQueue {
    pool: MySqlPool,
    segments_table: OnceCell<bool>,
}

impl MySqlQueue {
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, QueueError> {
        let opts = MySqlConnectOptions::from_str(cfg.url.expose())?;
        super::probe_connection(&opts, cfg.connect_timeout).await?;
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
        Ok(MySqlQueue { pool, segments_table: OnceCell::new() })
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    async fn exec_held(&self, (sql, vals): (String, Vec<Val>)) -> Result<bool, QueueError> {
        let q = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals);
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn insert_returning_id(&self, sql: String, vals: Vec<Val>) -> Result<i64, QueueError> {
        let done = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals).execute(&self.pool).await?;
        Ok(done.last_insert_id() as i64)
    }

    async fn table_exists(&self, name: &str) -> Result<bool, QueueError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn has_segments_table(&self) -> Result<bool, QueueError> {
        Ok(*self.segments_table.get_or_try_init(|| async { self.table_exists(schema::SEGMENTS).await }).await?)
    }

    async fn columns(&self) -> Result<Vec<(String, String)>, QueueError> {
        Ok(sqlx::query_as(
            "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn index_exists(&self, name: &str) -> Result<bool, QueueError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
        )
        .bind(schema::RECORDINGS)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn claim_once(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "SELECT CAST(id AS SIGNED), CAST(apex_id AS CHAR), CAST(r2_path AS CHAR), CAST(r2_bucket AS CHAR), \
                 CAST(file_format AS CHAR), CAST(priority AS SIGNED), CAST({next} AS SIGNED), \
                 CAST(max_attempts AS SIGNED), CAST({crashes} AS SIGNED), CAST(campaign_type AS CHAR), \
                 CAST(direction AS CHAR), CAST(client_ref AS CHAR) \
             FROM {r} WHERE {claimable} ORDER BY {order} LIMIT ? FOR UPDATE SKIP LOCKED",
            next = super::NEXT_ATTEMPT,
            crashes = super::CRASHES_AT_CLAIM,
            r = schema::RECORDINGS,
            claimable = super::claimable(DIALECT),
            order = super::CLAIM_ORDER,
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n as i64).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut jobs: Vec<Job> = rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let attempt = attempts(r.get::<i64, _>(6));
                Job {
                    id,
                    apex_id: r.get(1),
                    r2_path: r.get::<Option<String>, _>(2).unwrap_or_default(),
                    r2_bucket: r.get(3),
                    file_format: r.get(4),
                    priority: r.get::<i64, _>(5) as i32,
                    attempts: attempt,
                    max_attempts: r.get::<Option<i64>, _>(7).map(attempts),
                    crashes: attempts(r.get::<i64, _>(8)),
                    context: super::CallContext {
                        campaign_type: r.get(9),
                        direction: r.get(10),
                        client_ref: r.get(11),
                    },
                    lease: Lease { id, worker_id: worker_id.to_string(), attempt, token: String::new() },
                }
            })
            .collect();
        // MySQL assigns left to right: `attempts` reads the old times first.
        let now = DIALECT.now();
        let sql = format!(
            "UPDATE {r} SET crashes = {crashes}, attempts = {next}, processing_status = 'processing', \
                 processing_stage = 'claimed', \
                 worker_id = ?, lease_token = UUID(), processing_started_at = {now}, heartbeat_at = {now}, \
                 processing_completed_at = NULL, updated_at = {now} \
             WHERE id IN ({ids})",
            r = schema::RECORDINGS,
            next = super::NEXT_ATTEMPT,
            crashes = super::CRASHES_AT_CLAIM,
            ids = vec!["?"; jobs.len()].join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id);
        for j in &jobs {
            q = q.bind(j.id);
        }
        q.execute(&mut *tx).await?;
        // UUID() is evaluated per row: read each row's token back (the rows are ours,
        // locked by this transaction).
        let sql = format!(
            "SELECT CAST(id AS SIGNED), CAST(lease_token AS CHAR) FROM {} WHERE id IN ({})",
            schema::RECORDINGS,
            vec!["?"; jobs.len()].join(", ")
        );
        let mut q = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql));
        for j in &jobs {
            q = q.bind(j.id);
        }
        for (id, token) in q.fetch_all(&mut *tx).await? {
            if let Some(j) = jobs.iter_mut().find(|j| j.id == id) {
                j.lease.token = token;
            }
        }
        tx.commit().await?;
        Ok(jobs)
    }
}

/// InnoDB chose this transaction as a deadlock victim (or a lock wait timed out).
fn is_deadlock(e: &QueueError) -> bool {
    let QueueError::Database(sqlx::Error::Database(d)) = e else { return false };
    matches!(d.code().as_deref(), Some("40001") | Some("HY000"))
        && (d.message().contains("Deadlock") || d.message().contains("Lock wait timeout"))
}

/// Whether one of the indexes, given as `(index, position, column, collation)`
/// rows of `information_schema.statistics`, serves `WHERE processing_status IN
/// (…) ORDER BY processing_status DESC, priority DESC, id`: status descending,
/// then priority descending (`D`); InnoDB appends the primary key `id` to every
/// secondary index.
fn serves_claim_order(stats: &[(String, u32, String, Option<String>)]) -> bool {
    let mut names: Vec<&str> = stats.iter().map(|s| s.0.as_str()).collect();
    names.dedup();
    names.iter().any(|name| {
        let col = |pos: u32| stats.iter().find(|s| s.0 == *name && s.1 == pos);
        matches!(col(1), Some(c) if c.2.eq_ignore_ascii_case("processing_status") && c.3.as_deref() == Some("D"))
            && matches!(col(2), Some(c) if c.2.eq_ignore_ascii_case("priority") && c.3.as_deref() == Some("D"))
            && col(3).is_none_or(|c| c.2.eq_ignore_ascii_case("id") && c.3.as_deref() != Some("D"))
    })
}

super::impl_queue!(MySqlQueue, {
    fn backend(&self) -> Backend {
        Backend::Mysql
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        // One migrator at a time across workers (DDL commits implicitly here, so a
        // named lock, not a transaction, guards it; every step checks first, so a
        // run that stopped half-way is finished by the next).
        sqlx::query("SELECT GET_LOCK('callscribe_migrate', 60)").execute(&mut *conn).await?;
        let result = async {
            Ok::<_, QueueError>(super::converge_schema!(
                conn,
                Backend::Mysql,
                columns: self.columns().await?,
                index_exists: |name| self.index_exists(name).await?
            ))
        }
        .await;
        sqlx::query("SELECT RELEASE_LOCK('callscribe_migrate')").execute(&mut *conn).await?;
        result
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        Ok(schema::missing(&self.columns().await?))
    }

    async fn type_problems(&self) -> Result<Vec<String>, QueueError> {
        let rows: Vec<(String, String, String, String, Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), CAST(data_type AS CHAR), \
                 CAST(column_type AS CHAR), CAST(character_maximum_length AS SIGNED), \
                 CAST(numeric_precision AS SIGNED), CAST(numeric_scale AS SIGNED) \
             FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let cols: Vec<ColumnInfo> = rows
            .into_iter()
            .map(|(table, column, data_type, detail, len, p, s)| ColumnInfo {
                table,
                column,
                data_type: data_type.to_ascii_lowercase(),
                detail,
                max_length: len,
                precision: p,
                scale: s,
            })
            .collect();
        Ok(schema::type_problems(&cols))
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
            "no index on ai_call_recordings (processing_status DESC, priority DESC, id): each claim sorts and locks \
             every due row, so concurrent workers skip them all and wait; run `callscribe migrate` or the app's \
             migration from `callscribe laravel-migration` (descending keys need MariaDB >= 10.8 or MySQL >= 8)"
                .to_string()
        }))
    }

    async fn time_zone_problem(&self) -> Result<Option<String>, QueueError> {
        let (global, system): (String, String) =
            sqlx::query_as("SELECT CAST(@@global.time_zone AS CHAR), CAST(@@system_time_zone AS CHAR)")
                .fetch_one(&self.pool)
                .await?;
        let utc = |z: &str| matches!(z.to_ascii_uppercase().as_str(), "UTC" | "+00:00" | "GMT" | "ETC/UTC" | "Z");
        let effective = if global.eq_ignore_ascii_case("SYSTEM") { system.clone() } else { global.clone() };
        Ok((!utc(&effective)).then(|| {
            format!(
                "the server's time zone is {effective} (time_zone={global}, system={system}): callscribe writes UTC, \
                 so set 'timezone' => '+00:00' on the app's `ai` connection in config/database.php, or the app \
                 will read processing times shifted"
            )
        }))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        // A deadlock victim lost nothing: its transaction rolled back. Try again.
        let mut tries = 0;
        loop {
            match self.claim_once(worker_id, n).await {
                Err(e) if is_deadlock(&e) && tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError> {
        let segments_table = self.has_segments_table().await?;
        let mut tx = self.pool.begin().await?;
        let written: Result<(), QueueError> =
            async { super::write_results!(tx, lease, results, segments_table, sqlx::MySql, "") }.await;
        match written {
            Ok(()) => Ok(tx.commit().await?),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
});

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
        // The PR-1 key (status ascending) reads `pending` before `queued`.
        assert!(!serves_claim_order(&idx("old", &[("processing_status", "A"), ("priority", "D"), ("id", "A")])));
        let mut both = ascending.clone();
        both.extend(idx("claim_order", &[("processing_status", "D"), ("priority", "D"), ("id", "A")]));
        assert!(serves_claim_order(&both));
        // The primary key is implied at the end of an InnoDB secondary index.
        assert!(serves_claim_order(&idx("short", &[("processing_status", "D"), ("priority", "D")])));
        assert!(!serves_claim_order(&idx("lifo", &[("processing_status", "D"), ("priority", "D"), ("id", "D")])));
        assert!(!serves_claim_order(&idx("no_status", &[("priority", "D"), ("id", "A")])));
        assert!(!serves_claim_order(&[]));
    }
}
