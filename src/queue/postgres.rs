//! PostgreSQL backend. A claim is one statement: a `MATERIALIZED` CTE selects
//! `LIMIT n` rows `FOR UPDATE SKIP LOCKED`, and the `UPDATE … FROM` that CTE
//! marks them. The CTE runs exactly once whatever the plan; the earlier form,
//! `UPDATE … FROM (subquery)`, could be planned as a nested loop that re-ran the
//! subquery once per outer row and so claimed more than `n` rows (seen: `LIMIT
//! 1` took 4 of 4 rows on a table without the partial claim index).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};
use tokio::sync::OnceCell;

use super::schema::{self, ColumnInfo};
use super::{attempts, Dialect, Job, JobResults, Lease, QueueError, Val};
use crate::config::{Backend, DatabaseConfig};

const DIALECT: Dialect = Dialect { backend: Backend::Postgres };

/// The id of the row an `INSERT … RETURNING id` made.
async fn insert_id(conn: &mut sqlx::PgConnection, sql: String, vals: Vec<Val>) -> Result<i64, QueueError> {
    Ok(super::bind_vals!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), vals).fetch_one(&mut *conn).await?)
}

pub struct PgQueue {
    pool: PgPool,
    segments_table: OnceCell<bool>,
}

impl PgQueue {
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, QueueError> {
        let opts = PgConnectOptions::from_str(cfg.url.expose())?.application_name("callscribe");
        super::probe_connection(&opts, cfg.connect_timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.connect_timeout)
            .connect_with(opts)
            .await?;
        Ok(PgQueue { pool, segments_table: OnceCell::new() })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn exec_held(&self, (sql, vals): (String, Vec<Val>)) -> Result<bool, QueueError> {
        let q = super::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), vals);
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn insert_returning_id(&self, sql: String, vals: Vec<Val>) -> Result<i64, QueueError> {
        let sql = format!("{sql} RETURNING id::int8");
        Ok(super::bind_vals!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), vals).fetch_one(&self.pool).await?)
    }

    async fn table_exists(&self, name: &str) -> Result<bool, QueueError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
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
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

super::impl_queue!(PgQueue, {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        // One migrator at a time across workers.
        sqlx::query("SELECT pg_advisory_lock(727274)").execute(&mut *conn).await?;
        let result = async {
            Ok::<_, QueueError>(super::converge_schema!(
                conn,
                Backend::Postgres,
                columns: self.columns().await?,
                index_exists: |name| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_indexes WHERE indexname = $1")
                    .bind(name)
                    .fetch_one(&mut *conn)
                    .await?
                    > 0
            ))
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock(727274)").execute(&mut *conn).await?;
        result
    }

    async fn missing_columns(&self) -> Result<Vec<String>, QueueError> {
        Ok(schema::missing(&self.columns().await?))
    }

    async fn type_problems(&self) -> Result<Vec<String>, QueueError> {
        let rows: Vec<(String, String, String, Option<i32>, Option<i32>, Option<i32>)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text, character_maximum_length::int4, \
                 numeric_precision::int4, numeric_scale::int4 \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?;
        // Laravel's enum on PostgreSQL is a varchar with a CHECK constraint.
        let checks: Vec<(String, String)> = sqlx::query_as(
            "SELECT rel.relname::text, pg_get_constraintdef(c.oid) FROM pg_constraint c \
             JOIN pg_class rel ON rel.oid = c.conrelid \
             WHERE c.contype = 'c' AND rel.relname LIKE 'ai\\_%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let cols: Vec<ColumnInfo> = rows
            .into_iter()
            .map(|(table, column, data_type, len, p, s)| {
                let detail = checks
                    .iter()
                    .filter(|(t, def)| *t == table && def.contains(&column))
                    .map(|(_, def)| def.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                let data_type = match data_type.as_str() {
                    "character varying" => "varchar".to_string(),
                    other => other.to_string(),
                };
                ColumnInfo {
                    table,
                    column,
                    data_type,
                    detail,
                    max_length: len.map(i64::from),
                    precision: p.map(i64::from),
                    scale: s.map(i64::from),
                }
            })
            .collect();
        Ok(schema::type_problems(&cols))
    }

    async fn claim(&self, worker_id: &str, n: u32) -> Result<Vec<Job>, QueueError> {
        let now = DIALECT.now();
        let sql = format!(
            "WITH c AS MATERIALIZED ( \
                 SELECT id FROM {r} WHERE {claimable} ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE {r} x SET processing_status = 'processing', crashes = {crashes}, attempts = {next}, \
                 processing_stage = 'claimed', \
                 worker_id = $1, lease_token = gen_random_uuid()::text, processing_started_at = {now}, \
                 heartbeat_at = {now}, processing_completed_at = NULL, updated_at = {now} \
             FROM c WHERE x.id = c.id \
             RETURNING x.id::int8, x.apex_id::text, x.r2_path::text, x.r2_bucket::text, x.file_format::text, \
                 x.priority::int4, x.attempts::int8, x.max_attempts::int8, x.lease_token::text, x.crashes::int8, \
                 x.campaign_type::text, x.direction::text, x.client_ref::text",
            r = schema::RECORDINGS,
            claimable = super::claimable(DIALECT),
            order = super::CLAIM_ORDER,
            crashes = super::CRASHES_AT_CLAIM,
            next =
                super::NEXT_ATTEMPT.replace("processing_", "x.processing_").replace("attempts + 1", "x.attempts + 1"),
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker_id).bind(n as i64).fetch_all(&self.pool).await?;
        let mut jobs = rows
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
                    priority: r.get(5),
                    attempts: attempt,
                    max_attempts: r.get::<Option<i64>, _>(7).map(attempts),
                    crashes: attempts(r.get::<i64, _>(9)),
                    context: super::CallContext {
                        campaign_type: r.get(10),
                        direction: r.get(11),
                        client_ref: r.get(12),
                    },
                    lease: Lease { id, worker_id: worker_id.to_string(), attempt, token: r.get(8) },
                }
            })
            .collect::<Vec<_>>();
        jobs.sort_by_key(|j| (-j.priority, j.id));
        Ok(jobs)
    }

    async fn complete(&self, lease: &Lease, results: &JobResults) -> Result<(), QueueError> {
        let segments_table = self.has_segments_table().await?;
        let mut tx = self.pool.begin().await?;
        let written: Result<(), QueueError> =
            async { super::write_results!(tx, lease, results, segments_table, sqlx::Postgres, "::json") }.await;
        match written {
            Ok(()) => Ok(tx.commit().await?),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
});
