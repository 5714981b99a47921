//! Queue bench (not a test): claims per second with 1, 4 and 8 workers per
//! backend, each worker with its own connection pool, over a fresh table of
//! rows. Three paths side by side, measured in one run:
//!
//! - `raw SQL`: the backend's bare claim statement, one row per round trip;
//! - `Queue::claim`: the daemon's claim call;
//! - `claim+complete`: the daemon's claim, then its fenced completing
//!   transaction (result row, status) — the whole queue cost of one job.
//!
//! and `pgbench -N` (simple-update TPC-B, same client counts) on the same
//! PostgreSQL for scale. Run: `cargo bench --bench queue` (servers as in .ci/run).
//! `CALLSCRIBE_BENCH_ROWS` sets the rows per run (default 2000).

use std::sync::Arc;
use std::time::Instant;

use callscribe::config::{RawConfig, Secret};
use callscribe::queue::{self, JobResults, NewRecording, Queue};
use sqlx::Connection;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Postgres,
    Mariadb,
    Sqlite,
}

async fn fresh(kind: Kind, dir: &std::path::Path) -> String {
    let name = "cs_bench_queue";
    match kind {
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
            format!("postgres://postgres@127.0.0.1:5432/{name}")
        }
        Kind::Mariadb => {
            let mut c = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/").await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
            format!("mysql://root@127.0.0.1:3306/{name}")
        }
        Kind::Sqlite => {
            let p = dir.join("bench.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
            format!("sqlite://{}", p.display())
        }
    }
}

async fn connect(url: &str) -> Arc<dyn Queue> {
    let mut raw = RawConfig::default();
    raw.database.url = Secret::new(url);
    raw.database.max_connections = 2;
    queue::connect(&raw.validate().unwrap().database).await.unwrap()
}

async fn fill(q: &dyn Queue, rows: usize) {
    for i in 0..rows {
        q.enqueue(&NewRecording { r2_path: format!("b/{i}.wav"), ..Default::default() }).await.unwrap();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Raw,
    Claim,
    ClaimComplete,
}

/// The bare claim statement per backend (what FACTS.md measured as "raw").
async fn raw_claim(kind: Kind, url: &str, worker: &str) -> usize {
    match kind {
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let mut n = 0;
            while sqlx::query(
                "UPDATE ai_call_recordings SET processing_status = 'processing', attempts = attempts + 1, worker_id = $1 \
                 WHERE id = (SELECT id FROM ai_call_recordings WHERE processing_status IN ('queued', 'pending') AND deleted_at IS NULL \
                 ORDER BY processing_status DESC, priority DESC, id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id",
            )
            .bind(worker)
            .fetch_optional(&mut c)
            .await
            .unwrap()
            .is_some()
            {
                n += 1;
            }
            n
        }
        Kind::Mariadb => {
            let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
            // The same isolation the daemon's pool sets (no gap locks).
            sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut c).await.unwrap();
            let mut n = 0;
            loop {
                // A deadlock victim retries, as the daemon's claim does.
                let mut tx = c.begin().await.unwrap();
                let id: Option<u64> = match sqlx::query_scalar(
                    "SELECT id FROM ai_call_recordings WHERE processing_status IN ('queued', 'pending') AND deleted_at IS NULL \
                     ORDER BY processing_status DESC, priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                )
                .fetch_optional(&mut *tx)
                .await
                {
                    Ok(id) => id,
                    Err(_) => continue,
                };
                let Some(id) = id else { break };
                let updated = sqlx::query(
                    "UPDATE ai_call_recordings SET processing_status = 'processing', attempts = attempts + 1, worker_id = ? WHERE id = ?",
                )
                .bind(worker)
                .bind(id)
                .execute(&mut *tx)
                .await;
                if updated.is_err() || tx.commit().await.is_err() {
                    continue;
                }
                n += 1;
            }
            n
        }
        Kind::Sqlite => {
            use std::str::FromStr;
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .unwrap()
                .busy_timeout(std::time::Duration::from_secs(30));
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            let mut n = 0;
            while sqlx::query(
                "UPDATE ai_call_recordings SET processing_status = 'processing', attempts = attempts + 1, worker_id = ? \
                 WHERE id = (SELECT id FROM ai_call_recordings WHERE processing_status IN ('queued', 'pending') AND deleted_at IS NULL \
                 ORDER BY processing_status DESC, priority DESC, id LIMIT 1) RETURNING id",
            )
            .bind(worker)
            .fetch_optional(&mut c)
            .await
            .unwrap()
            .is_some()
            {
                n += 1;
            }
            n
        }
    }
}

async fn run(kind: Kind, path: Path, workers: usize, rows: usize, dir: &std::path::Path) -> f64 {
    let url = fresh(kind, dir).await;
    let setup = connect(&url).await;
    setup.migrate().await.unwrap();
    fill(setup.as_ref(), rows).await;
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let id = format!("bench-{w}");
            if path == Path::Raw {
                return raw_claim(kind, &url, &id).await;
            }
            let q = connect(&url).await;
            let mut n = 0;
            loop {
                let jobs = q.claim(&id, 1).await.unwrap();
                let Some(job) = jobs.into_iter().next() else {
                    break;
                };
                if path == Path::ClaimComplete {
                    q.complete(&job.lease, &JobResults::default()).await.unwrap();
                }
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, rows, "every row claimed exactly once");
    setup.close().await;
    total as f64 / secs
}

fn pgbench(clients: usize) -> Option<f64> {
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-q", "-s", "1", "-h", "127.0.0.1", "-U", "postgres", "postgres"])
        .output()
        .ok()?;
    if !init.status.success() {
        return None;
    }
    let out = std::process::Command::new("pgbench")
        .args(["-N", "-T", "5", "-c", &clients.to_string(), "-j", &clients.min(2).to_string()])
        .args(["-h", "127.0.0.1", "-U", "postgres", "postgres"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find(|l| l.starts_with("tps =")).and_then(|l| l.split_whitespace().nth(2)).and_then(|v| v.parse().ok())
}

fn main() {
    let rows: usize = std::env::var("CALLSCRIBE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!("queue bench: {rows} rows per run, claims per second (higher is better)\n");
    println!("| backend | workers | raw SQL | Queue::claim | claim/raw | claim+complete | pgbench -N tps |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for kind in [Kind::Postgres, Kind::Mariadb, Kind::Sqlite] {
        for workers in [1, 4, 8] {
            let raw = rt.block_on(run(kind, Path::Raw, workers, rows, dir.path()));
            let claim = rt.block_on(run(kind, Path::Claim, workers, rows, dir.path()));
            let full = rt.block_on(run(kind, Path::ClaimComplete, workers, rows, dir.path()));
            let pgb = match kind {
                Kind::Postgres => pgbench(workers).map(|t| format!("{t:.0}")).unwrap_or_else(|| "n/a".into()),
                _ => String::new(),
            };
            println!("| {kind:?} | {workers} | {raw:.0} | {claim:.0} | {:.2} | {full:.0} | {pgb} |", claim / raw);
        }
    }
}
