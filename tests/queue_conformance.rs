//! One conformance suite, run against real PostgreSQL, real MariaDB and SQLite:
//! concurrency (exactly once, none lost), a SIGKILLed worker process rescued,
//! fencing, backoff and max attempts, graceful shutdown, admin commands.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use callscribe::queue::maintenance::{Rescuer, RescuerConfig};
use callscribe::queue::{JobResults, NewRecording, QueueError, Selector};
use callscribe::storage;
use callscribe::worker::{RunMode, Worker};
use common::{row, wait_exit, wait_for, Env, Kind};
use tokio_util::sync::CancellationToken;

async fn worker_for(env: &Env, id: &str) -> Worker {
    let mut raw = env.raw_config();
    raw.worker.id = id.into();
    let cfg = raw.validate().unwrap();
    let q = callscribe::queue::connect(&cfg.database).await.unwrap();
    let store = storage::open(&cfg.storage).await.unwrap();
    let pipeline = Arc::new(callscribe::app::pipeline_for(&cfg, store).await.unwrap());
    Worker::new(q, pipeline, cfg.worker, cfg.retry)
}

/// 4 workers, each with its own connection pool, over 1,000 rows: every row is
/// completed, claimed exactly once (attempts = 1), with exactly one result row.
async fn four_workers_complete_every_row_exactly_once(kind: Kind) {
    let env = Env::new(kind, &format!("four_workers_{kind:?}")).await;
    let q = env.queue().await;
    let audio = common::wav(8000, 1, 0.05);
    std::fs::write(env.recordings().join("tiny.wav"), &audio).unwrap();
    const N: usize = 1000;
    for i in 0..N {
        q.enqueue(&NewRecording {
            r2_path: "tiny.wav".into(),
            apex_id: Some(format!("call-{i}")),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // Connect all four first, then start them together.
    let mut workers = Vec::new();
    for w in 0..4 {
        workers.push(worker_for(&env, &format!("w{w}")).await);
    }
    let handles: Vec<_> = workers
        .into_iter()
        .map(|worker| tokio::spawn(async move { worker.run(RunMode::Drain, CancellationToken::new()).await.unwrap() }))
        .collect();
    let mut total = 0;
    let mut per_worker = Vec::new();
    for h in handles {
        let s = h.await.unwrap();
        assert_eq!((s.failed, s.retried, s.lease_lost, s.abandoned), (0, 0, 0, 0), "{s:?}");
        total += s.completed;
        per_worker.push(s.completed);
    }
    assert_eq!(total, N as u64, "completions reported by the workers: {per_worker:?}");
    let rows = q.list(None, 10 * N as u32).await.unwrap();
    assert_eq!(rows.len(), N);
    let mut by_worker: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        assert_eq!(r.status, "completed", "{r:?}");
        assert_eq!(r.attempts, 1, "claimed more than once: {r:?}");
        assert_eq!(r.analyses, 1, "result rows: {r:?}");
        assert_eq!(r.duration_seconds, Some(0), "the measured 0.05 s, in whole seconds: {r:?}");
        *by_worker.entry(r.worker_id.clone().unwrap()).or_default() += 1;
    }
    // More than one worker took part (SKIP LOCKED let them proceed side by side).
    assert!(by_worker.len() >= 2, "work shares {by_worker:?}");
}

/// A worker process killed with SIGKILL mid-job: its row is rescued once its
/// heartbeat is stale, then completed exactly once by another process.
async fn killed_worker_process_is_rescued(kind: Kind) {
    let env = Env::new(kind, &format!("sigkill_{kind:?}")).await;
    let q = env.queue().await;
    let fifo = env.recordings().join("slow.wav");
    common::mkfifo(&fifo);
    let id = q.enqueue(&NewRecording { r2_path: "slow.wav".into(), ..Default::default() }).await.unwrap();
    let mut victim = env.spawn(&["run", "--worker-id", "victim"], &[]);
    let victim_pid = victim.id();
    wait_for(q.as_ref(), id, Duration::from_secs(20), "victim claims", |r| r.status == "processing").await;
    common::signal(&victim, libc::SIGKILL);
    wait_exit(&mut victim, Duration::from_secs(5)).expect("victim is gone");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.worker_id.as_deref(), r.attempts), ("processing", Some("victim"), 1));

    // The download finally has data.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(&fifo, common::wav(8000, 1, 1.0)).unwrap();

    let rescuer = Rescuer::new(
        q.clone(),
        RescuerConfig {
            stale_after: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            default_max_attempts: 5,
            max_crashes: 100,
        },
    );
    assert_eq!(rescuer.run_once().await.unwrap().requeued, 0, "a fresh heartbeat is not stale");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counts = rescuer.run_once().await.unwrap();
    assert_eq!((counts.requeued, counts.failed), (1, 0));
    let r = row(q.as_ref(), id).await;
    assert_eq!(r.status, "pending");
    // The stage it was in is named (`claimed` or `fetch`: the download never ended).
    assert!(r.processing_error.as_deref().unwrap().contains("victim stopped heartbeating in stage "), "{r:?}");

    // The killed worker's half-written download is still in the temp folder…
    let temp_files = || -> Vec<String> {
        std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("callscribe-"))
            .collect()
    };
    let left = temp_files();
    assert!(left.iter().any(|n| n.starts_with(&format!("callscribe-{victim_pid}-"))), "{left:?}");
    let (code, out, err) = env.cli(&["run", "--drain", "--worker-id", "rescuer"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let r = row(q.as_ref(), id).await;
    assert_eq!(
        (r.status.as_str(), r.worker_id.as_deref(), r.attempts, r.analyses),
        ("completed", Some("rescuer"), 2, 1)
    );
    // …and the next worker swept it at start; its own download went with its job.
    assert_eq!(temp_files(), Vec::<String>::new());
    assert_eq!(r.processing_error, None);
}

/// A worker whose lease was rescued and re-claimed can neither complete, nor
/// heartbeat, nor fail, nor hand back the row; the new holder can.
async fn fencing_stops_a_worker_that_lost_its_lease(kind: Kind) {
    let env = Env::new(kind, &format!("fencing_{kind:?}")).await;
    let q = env.queue().await;
    let id = q.enqueue(&NewRecording { r2_path: "x.wav".into(), ..Default::default() }).await.unwrap();
    let a = q.claim("A", 1).await.unwrap().pop().unwrap();
    assert!(q.claim("B", 1).await.unwrap().is_empty(), "a held row is not claimable");
    assert!(q.heartbeat(&a.lease).await.unwrap());
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(q.rescue_stale(Duration::from_millis(10), 5, 100).await.unwrap().requeued, 1);
    let b = q.claim("B", 1).await.unwrap().pop().unwrap();
    assert_eq!((b.id, b.attempts), (id, 2));

    let results = JobResults::default();
    assert!(matches!(q.complete(&a.lease, &results).await, Err(QueueError::LeaseLost { .. })));
    assert!(!q.heartbeat(&a.lease).await.unwrap());
    assert!(!q.fail(&a.lease, "late failure").await.unwrap());
    assert!(!q.release(&a.lease).await.unwrap());
    assert!(!q.retry(&a.lease, "late", Duration::ZERO).await.unwrap());
    // Same worker id and attempt, another claim's token: still fenced.
    let mut stale_b = b.lease.clone();
    stale_b.token = a.lease.token.clone();
    assert!(matches!(q.complete(&stale_b, &results).await, Err(QueueError::LeaseLost { .. })));

    q.complete(&b.lease, &results).await.unwrap();
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.worker_id.as_deref()), ("completed", Some("B")));
    assert!(matches!(q.complete(&b.lease, &results).await, Err(QueueError::LeaseLost { .. })), "completes once");
}

/// Retry sets a not-before time; claims respect it and priority; a transient
/// failure on the last attempt fails the row for good.
async fn backoff_priority_and_max_attempts(kind: Kind) {
    let env = Env::new(kind, &format!("backoff_{kind:?}")).await;
    let q = env.queue().await;
    let low = q.enqueue(&NewRecording { r2_path: "a.wav".into(), ..Default::default() }).await.unwrap();
    let high = q.enqueue(&NewRecording { r2_path: "b.wav".into(), priority: 10, ..Default::default() }).await.unwrap();
    let first = q.claim("w", 1).await.unwrap().pop().unwrap();
    assert_eq!(first.id, high, "higher priority first");
    let second = q.claim("w", 1).await.unwrap().pop().unwrap();
    assert_eq!(second.id, low);

    assert!(q.retry(&first.lease, "attempt 1 of 5: storage unavailable", Duration::from_millis(1500)).await.unwrap());
    let r = row(q.as_ref(), high).await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 1));
    assert!(q.claim("w", 5).await.unwrap().is_empty(), "not claimable before its retry time");
    assert_eq!(q.stats().await.unwrap().deferred, 1);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let again = q.claim("w", 5).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (high, 2));

    // Through the worker: a download that never finishes times out (transient)
    // on every attempt; with 3 attempts the row ends failed with the reason.
    let fifo_env = Env::new(kind, &format!("maxatt_{kind:?}")).await;
    let fq = fifo_env.queue().await;
    common::mkfifo(&fifo_env.recordings().join("never.wav"));
    let id = fq.enqueue(&NewRecording { r2_path: "never.wav".into(), ..Default::default() }).await.unwrap();
    // Each drain: a 300 ms job timeout, 3 attempts, 100–400 ms backoff.
    let drain = || {
        fifo_env
            .command(&["run", "--drain"])
            .env("CALLSCRIBE_WORKER__JOB_TIMEOUT", "300ms")
            .env("CALLSCRIBE_RETRY__MAX_ATTEMPTS", "3")
            .env("CALLSCRIBE_RETRY__BACKOFF_BASE", "200ms")
            .env("CALLSCRIBE_RETRY__BACKOFF_MAX", "400ms")
            .output()
            .unwrap()
    };
    let out = drain();
    let (code, err) = (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(code, Some(0), "{err}");
    let r = row(fq.as_ref(), id).await;
    assert_eq!(r.status, "pending", "drain leaves the deferred retry: {r:?}");
    let e = r.processing_error.as_deref().unwrap();
    assert!(e.starts_with("attempt ") && e.contains(" of 3: timed out"), "{r:?}");
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(450)).await;
        let out = drain();
        assert!(out.status.success());
        if row(fq.as_ref(), id).await.status == "failed" {
            break;
        }
    }
    let r = row(fq.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("failed", 3), "{r:?}");
    let e = r.processing_error.unwrap();
    assert!(e.contains("gave up after 3 attempts") && e.contains("timed out"), "{e}");
    unblock(&fifo_env.recordings().join("never.wav"));
}

/// Open a FIFO for writing without blocking, releasing any reader stuck on it.
fn unblock(path: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path);
}

/// SIGTERM: a job that finishes within the grace period completes; one that
/// does not is handed back to `pending` without spending its attempt.
async fn graceful_shutdown(kind: Kind) {
    let env = Env::new(kind, &format!("shutdown_{kind:?}")).await;
    let q = env.queue().await;

    // 1. Hand back: the download never finishes.
    let fifo = env.recordings().join("stuck.wav");
    common::mkfifo(&fifo);
    let id = q.enqueue(&NewRecording { r2_path: "stuck.wav".into(), ..Default::default() }).await.unwrap();
    let mut w = env.spawn(&["run", "--worker-id", "graceful"], &[("CALLSCRIBE_WORKER__SHUTDOWN_GRACE", "1s")]);
    wait_for(q.as_ref(), id, Duration::from_secs(20), "claim", |r| r.status == "processing").await;
    let t = std::time::Instant::now();
    common::signal(&w, libc::SIGTERM);
    let code = wait_exit(&mut w, Duration::from_secs(10)).expect("exits after the grace period");
    assert_eq!(code, 0);
    assert!(t.elapsed() < Duration::from_secs(6), "took {:?}", t.elapsed());
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 0), "handed back, attempt not spent: {r:?}");
    unblock(&fifo);

    // 2. Finish within grace: the data arrives after SIGTERM.
    std::fs::remove_file(&fifo).unwrap();
    common::mkfifo(&fifo);
    let mut w = env.spawn(&["run", "--worker-id", "graceful2"], &[("CALLSCRIBE_WORKER__SHUTDOWN_GRACE", "20s")]);
    wait_for(q.as_ref(), id, Duration::from_secs(20), "claim", |r| r.status == "processing").await;
    common::signal(&w, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&fifo, common::wav(8000, 1, 0.5)).unwrap();
    let code = wait_exit(&mut w, Duration::from_secs(20)).expect("exits once the job is done");
    assert_eq!(code, 0);
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts, r.analyses), ("completed", 1, 1), "{r:?}");
    assert!(q.claim("other", 1).await.unwrap().is_empty(), "nothing left after shutdown");
}

/// The admin commands, through the real binary.
async fn admin_commands(kind: Kind) {
    let env = Env::new(kind, &format!("admin_{kind:?}")).await;
    let q = env.queue().await;
    let good = common::wav(8000, 1, 0.5);
    let a = env.enqueue_bytes(q.as_ref(), "a.wav", &good).await;
    let b = env.enqueue_bytes(q.as_ref(), "b.wav", b"").await; // fails: empty
    let c = q
        .enqueue(&NewRecording { r2_path: "c.wav".into(), apex_id: Some("APX-7".into()), ..Default::default() })
        .await
        .unwrap();
    std::fs::write(env.recordings().join("c.wav"), &good).unwrap();

    let (code, out, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 completed, 1 failed"), "{out}");

    let (code, out, _) = env.cli(&["stats", "--json"]);
    assert_eq!(code, 0);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((s["completed"].as_u64(), s["failed"].as_u64(), s["pending"].as_u64()), (Some(2), Some(1), Some(0)));
    assert_eq!(s["completed_last_hour"].as_u64(), Some(2));
    assert!(s["top_errors"][0]["error"].as_str().unwrap().contains("empty"), "{s}");
    let (_, text, _) = env.cli(&["stats"]);
    assert!(text.contains("failed") && text.contains("top errors"), "{text}");

    // requeue --failed --id: the failed row comes back with fresh attempts.
    std::fs::write(env.recordings().join("b.wav"), &good).unwrap();
    let (code, out, _) = env.cli(&["requeue", "--failed", "--id", &b.to_string()]);
    assert_eq!(code, 0);
    assert!(out.contains("requeued 1"), "{out}");
    let r = row(q.as_ref(), b).await;
    assert_eq!((r.status.as_str(), r.attempts, r.processing_error.as_deref()), ("pending", 0, None));
    let (code, _, _) = env.cli(&["requeue", "--failed", "--id", &a.to_string()]);
    assert_ne!(code, 0, "a completed row is not requeued by --failed");

    // reprocess --apex-id: results are replaced, not duplicated.
    let (code, out, _) = env.cli(&["reprocess", "--apex-id", "APX-7"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(row(q.as_ref(), c).await.status, "pending");
    let (code, out, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "{out}{err}");
    for id in [a, b, c] {
        let r = row(q.as_ref(), id).await;
        assert_eq!((r.status.as_str(), r.analyses), ("completed", 1), "{r:?}");
    }
    let (code, _, err) = env.cli(&["reprocess", "--id", "999999"]);
    assert_ne!(code, 0);
    assert!(err.contains("no matching row"), "{err}");

    // reset-stuck: a row held by a vanished worker goes back to pending.
    let d = q.enqueue(&NewRecording { r2_path: "a.wav".into(), ..Default::default() }).await.unwrap();
    let held = q.claim("ghost", 1).await.unwrap();
    assert_eq!(held[0].id, d);
    let (code, out, _) = env.cli(&["reset-stuck", "--older-than", "1h"]);
    assert_eq!(code, 0);
    assert!(out.contains("reset 0"), "a fresh heartbeat is not stuck: {out}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, out, _) = env.cli(&["reset-stuck", "--older-than", "1s"]);
    assert_eq!(code, 0);
    assert!(out.contains("reset 1"), "{out}");
    assert_eq!(row(q.as_ref(), d).await.status, "pending");
    let (code, _, err) = env.cli(&["reset-stuck", "--older-than", "soon"]);
    assert_ne!(code, 0);
    assert!(err.contains("soon"), "{err}");

    // Selector by id works the same as by apex id.
    assert_eq!(q.reprocess(&Selector::Id(a)).await.unwrap(), 1);
}

/// The rescuer fails a row whose holder died on its last attempt.
async fn rescue_fails_when_attempts_are_spent(kind: Kind) {
    let env = Env::new(kind, &format!("rescue_fail_{kind:?}")).await;
    let q = env.queue().await;
    let id = q.enqueue(&NewRecording { r2_path: "a.wav".into(), ..Default::default() }).await.unwrap();
    for attempt in 1..=2u32 {
        let j = q.claim("dies", 1).await.unwrap().pop().expect("claimable");
        assert_eq!(j.attempts, attempt);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let c = q.rescue_stale(Duration::from_millis(10), 2, 100).await.unwrap();
        let expect = if attempt < 2 { (1, 0) } else { (0, 1) };
        assert_eq!((c.requeued, c.failed), expect);
    }
    let r = row(q.as_ref(), id).await;
    assert_eq!(r.status, "failed");
    assert!(r.processing_error.unwrap().contains("attempt 2 of 2"));
}

/// A recording that kills every worker taking it (a native crash in whisper or
/// a decoder) is failed after `max_crashes` rescues, naming the stage its
/// holders were in, although attempts are left; a reprocess by the app starts
/// the count again.
async fn rescue_fails_a_row_that_keeps_crashing_its_workers(kind: Kind) {
    let env = Env::new(kind, &format!("crashes_{kind:?}")).await;
    let q = env.queue().await;
    let id = q.enqueue(&NewRecording { r2_path: "poison.wav".into(), ..Default::default() }).await.unwrap();
    for crash in 1..=2u32 {
        let j = q.claim("w", 1).await.unwrap().pop().expect("claimable");
        assert!(q.set_stage(&j.lease, "decode").await.unwrap());
        assert!(q.set_stage(&j.lease, "transcribe").await.unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
        let c = q.rescue_stale(Duration::from_millis(10), 5, 2).await.unwrap();
        let r = row(q.as_ref(), id).await;
        let msg = r.processing_error.clone().unwrap();
        if crash == 1 {
            assert_eq!((c.requeued, c.failed, r.status.as_str()), (1, 0, "pending"), "{r:?}");
            assert!(msg.contains("stopped heartbeating in stage transcribe"), "{msg}");
        } else {
            assert_eq!((c.requeued, c.failed, r.status.as_str()), (0, 1, "failed"), "{r:?}");
            assert!(msg.contains("crashed or stalled its worker 2 time(s), last in stage transcribe"), "{msg}");
            assert!(msg.contains("attempt 2 of 5"), "attempts were left: {msg}");
        }
    }
    // A crash the holder counts itself (its inference process died).
    assert_eq!(q.reprocess(&callscribe::queue::Selector::Id(id)).await.unwrap(), 1);
    let j = q.claim("w", 1).await.unwrap().pop().expect("claimable after reprocess");
    assert_eq!(q.record_crash(&j.lease).await.unwrap(), Some(1), "the count starts again");
    assert_eq!(q.record_crash(&j.lease).await.unwrap(), Some(2));
    let stranger = callscribe::queue::Lease { token: "not-the-token".into(), ..j.lease.clone() };
    assert_eq!(q.record_crash(&stranger).await.unwrap(), None, "fenced");
    assert!(!q.set_stage(&stranger, "analyze").await.unwrap(), "fenced");
}

/// Another worker is mid-claim, holding one row locked: a claim beside it still
/// gets the other due rows instead of an empty answer. (On MariaDB without a
/// descending claim index the claim sorted and locked every pending row, and a
/// concurrent claimer skipped them all.) Server databases only: SQLite has one writer.
async fn a_claim_in_flight_does_not_hide_the_queue(kind: Kind) {
    use sqlx::Connection;
    let env = Env::new(kind, &format!("claim_in_flight_{kind:?}")).await;
    let q = env.queue().await;
    assert_eq!(q.claim_index_problem().await.unwrap(), None, "after migrate the claim is served by an index");
    for i in 0..1000 {
        let rec = NewRecording { r2_path: format!("{i}.wav"), priority: i % 3, ..Default::default() };
        q.enqueue(&rec).await.unwrap();
    }
    let select = "SELECT id FROM ai_call_recordings WHERE processing_status = 'pending' \
                  ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED";
    let (held, jobs) = match kind {
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&env.url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            let (held,): (i64,) = sqlx::query_as(select).fetch_one(&mut *tx).await.unwrap();
            (held, q.claim("beside", 4).await.unwrap())
        }
        Kind::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&env.url).await.unwrap();
            sqlx::raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut c).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            let (held,): (u64,) = sqlx::query_as(select).fetch_one(&mut *tx).await.unwrap();
            (held as i64, q.claim("beside", 4).await.unwrap())
        }
        Kind::Sqlite => unreachable!("one writer"),
    };
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 4, "claimed {ids:?} beside the held row {held}");
    assert!(!ids.contains(&held), "claimed the held row {held}: {ids:?}");
    assert!(jobs.iter().all(|j| j.priority == 2), "highest priority first: {jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claim_in_flight_does_not_hide_the_queue() {
    a_claim_in_flight_does_not_hide_the_queue(Kind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_claim_in_flight_does_not_hide_the_queue() {
    a_claim_in_flight_does_not_hide_the_queue(Kind::Mysql).await
}

/// A PostgreSQL claim takes at most its `LIMIT` whatever the plan. The planner
/// is pushed towards the plan that broke the earlier `UPDATE … FROM (subquery)`
/// form (a nested loop that re-runs the locking subquery per outer row): no
/// partial claim index, hash and merge joins off, generic plans for the
/// prepared statement (so `LIMIT $2` is not a known 1). Sequential and
/// concurrent claims must each take exactly one row, and no row twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claim_takes_at_most_its_limit_under_a_nested_loop_plan() {
    use sqlx::Connection;
    let env = Env::new(Kind::Postgres, "claim_limit_pg").await;
    let db = env.url.rsplit('/').next().unwrap().to_string();
    let mut c = sqlx::PgConnection::connect(&env.url).await.unwrap();
    for stmt in [
        "DROP INDEX ai_call_recordings_claim_idx".to_string(),
        format!("ALTER DATABASE {db} SET enable_hashjoin = off"),
        format!("ALTER DATABASE {db} SET enable_mergejoin = off"),
        format!("ALTER DATABASE {db} SET plan_cache_mode = force_generic_plan"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt)).execute(&mut c).await.unwrap();
    }
    let q = env.queue().await;
    for i in 0..12 {
        q.enqueue(&NewRecording { r2_path: format!("{i}.wav"), ..Default::default() }).await.unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let jobs = q.claim("one-by-one", 1).await.unwrap();
        assert_eq!(jobs.len(), 1, "LIMIT 1 claimed {jobs:?}");
        assert!(seen.insert(jobs[0].id));
    }
    // Four claimers at once, two rounds each, one row per claim.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let q = env.queue().await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..2 {
                let jobs = q.claim(&format!("w{w}"), 1).await.unwrap();
                assert!(jobs.len() <= 1, "LIMIT 1 claimed {jobs:?}");
                got.extend(jobs.into_iter().map(|j| j.id));
            }
            got
        }));
    }
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "row {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 12, "every row claimed once: {seen:?}");
    assert!(q.claim("late", 1).await.unwrap().is_empty());
}

/// The database refusing the results for what they are (here a CHECK
/// constraint the app might have added) fails the row at once with the
/// database's words: retrying would transcribe the call again for nothing, and
/// the row must not end as "abandoned … stopped heartbeating".
async fn a_refused_write_fails_the_row_once(kind: Kind) {
    use sqlx::Connection;
    let env = Env::new(kind, &format!("refused_write_{kind:?}")).await;
    let q = env.queue().await;
    let id = env.enqueue_bytes(q.as_ref(), "a.wav", &common::wav(8000, 1, 0.5)).await;
    let check = "ALTER TABLE ai_call_analysis ADD CONSTRAINT no_unnamed_models CHECK (model_used <> 'none')";
    match kind {
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&env.url).await.unwrap();
            sqlx::raw_sql(check).execute(&mut c).await.unwrap();
        }
        _ => {
            let mut c = sqlx::MySqlConnection::connect(&env.url).await.unwrap();
            sqlx::raw_sql(check).execute(&mut c).await.unwrap();
        }
    }
    let (code, _, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "the worker keeps going: {err}");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts, r.analyses), ("failed", 1, 0), "{r:?}");
    let e = r.processing_error.unwrap();
    assert!(e.contains("storing the results failed") && e.contains("no_unnamed_models"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_write_fails_the_row_once() {
    a_refused_write_fails_the_row_once(Kind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_refused_write_fails_the_row_once() {
    a_refused_write_fails_the_row_once(Kind::Mysql).await
}

/// `doctor`'s time-zone check: a MariaDB server whose zone is not UTC makes the
/// app's connection (no `timezone` setting) read our UTC times shifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_time_zone_other_than_utc_is_named() {
    use sqlx::Connection;
    let env = Env::new(Kind::Mysql, "time_zone_mysql").await;
    let q = env.queue().await;
    let mut c = sqlx::MySqlConnection::connect(&env.url).await.unwrap();
    let (before,): (String,) =
        sqlx::query_as("SELECT CAST(@@global.time_zone AS CHAR)").fetch_one(&mut c).await.unwrap();
    sqlx::raw_sql("SET GLOBAL time_zone = '+05:30'").execute(&mut c).await.unwrap();
    let problem = q.time_zone_problem().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET GLOBAL time_zone = '{before}'"))).execute(&mut c).await.unwrap();
    let problem = problem.unwrap().expect("a warning");
    assert!(problem.contains("+05:30") && problem.contains("'timezone' => '+00:00'"), "{problem}");
    if before.eq_ignore_ascii_case("SYSTEM") || before == "+00:00" {
        // This server runs in UTC: nothing to say.
        let (system,): (String,) =
            sqlx::query_as("SELECT CAST(@@system_time_zone AS CHAR)").fetch_one(&mut c).await.unwrap();
        if before == "+00:00" || system.eq_ignore_ascii_case("UTC") {
            assert_eq!(q.time_zone_problem().await.unwrap(), None);
        }
    }
}

/// Two workers with the same worker id (containers on the host network both
/// `hostname:1`) and the same attempt number: the row is claimed by one, taken
/// back by the rescuer, reprocessed (attempts restart) and claimed by its twin.
/// The first holder's writes must all be refused: leases are fenced on a random
/// token per claim, not on (worker id, attempt).
async fn twin_worker_ids_are_fenced(kind: Kind) {
    let env = Env::new(kind, &format!("twin_ids_{kind:?}")).await;
    let q = env.queue().await;
    let id = q.enqueue(&NewRecording { r2_path: "a.wav".into(), ..Default::default() }).await.unwrap();
    let first = q.claim("host:1", 1).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(q.rescue_stale(Duration::ZERO, 5, 100).await.unwrap().requeued, 1);
    assert_eq!(q.reprocess(&callscribe::queue::Selector::Id(id)).await.unwrap(), 1);
    let twin = q.claim("host:1", 1).await.unwrap().remove(0);
    assert_eq!((twin.lease.worker_id.as_str(), twin.attempts), ("host:1", first.attempts), "same id, same attempt");
    assert_ne!(twin.lease.token, first.lease.token);
    assert!(!q.heartbeat(&first.lease).await.unwrap());
    assert!(!q.fail(&first.lease, "stale writer").await.unwrap());
    assert!(!q.release(&first.lease).await.unwrap());
    assert!(matches!(
        q.complete(&first.lease, &JobResults::default()).await,
        Err(callscribe::queue::QueueError::LeaseLost { .. })
    ));
    assert!(q.heartbeat(&twin.lease).await.unwrap());
    q.complete(&twin.lease, &JobResults::default()).await.unwrap();
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.processing_error.as_deref()), ("completed", None), "{r:?}");
}

/// Run `sql` on the test's database.
async fn exec(env: &Env, sql: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match env.kind {
        Kind::Postgres => {
            sqlx::raw_sql(sql).execute(&mut sqlx::PgConnection::connect(&env.url).await.unwrap()).await.unwrap();
        }
        Kind::Mysql => {
            sqlx::raw_sql(sql).execute(&mut sqlx::MySqlConnection::connect(&env.url).await.unwrap()).await.unwrap();
        }
        Kind::Sqlite => {
            sqlx::raw_sql(sql).execute(&mut sqlx::SqliteConnection::connect(&env.url).await.unwrap()).await.unwrap();
        }
    }
}

/// The analysis settings' tiers from the database: no `ai_configs` table reads
/// as none; with the other worker's table, its active rows come back in order
/// with their tier and key; a claim carries the row's context columns, and so
/// does `call_context` (for `reanalyze`).
async fn analysis_tiers_come_from_ai_configs_and_the_row_context(kind: Kind) {
    let env = Env::new(kind, &format!("tiers_{kind:?}")).await;
    let q = env.queue().await;
    assert!(q.analysis_layers().await.unwrap().is_empty(), "no table: no rows");
    let (id_type, json, flag) = match kind {
        Kind::Postgres => ("BIGSERIAL PRIMARY KEY", "JSON", "BOOLEAN NOT NULL DEFAULT TRUE"),
        Kind::Mysql => ("BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY", "JSON", "TINYINT(1) NOT NULL DEFAULT 1"),
        Kind::Sqlite => ("INTEGER PRIMARY KEY", "TEXT", "INTEGER NOT NULL DEFAULT 1"),
    };
    let off = if kind == Kind::Postgres { "FALSE" } else { "0" };
    exec(
        &env,
        &format!(
            "CREATE TABLE ai_configs (id {id_type}, config_tier VARCHAR(32) NOT NULL, campaign_type VARCHAR(64) NULL, \
             direction VARCHAR(32) NULL, client_ref VARCHAR(64) NULL, config_type VARCHAR(64) NULL, \
             config_data {json} NOT NULL, is_active {flag}, created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)"
        ),
    )
    .await;
    exec(
        &env,
        &format!(
            "INSERT INTO ai_configs (config_tier, campaign_type, direction, client_ref, config_data, is_active, updated_at) VALUES \
             ('universal', NULL, NULL, NULL, '{{\"topics\": [\"payment\"]}}', 1, '2026-01-01 00:00:00'), \
             ('campaign', 'delivery', NULL, NULL, '{{\"template\": \"delivery\"}}', 1, '2026-01-02 00:00:00'), \
             ('client', NULL, NULL, 'ACME', '{{\"topics\": [\"refund\"], \"tone_guidelines\": \"warm\"}}', 1, '2026-01-03 00:00:00'), \
             ('client', NULL, NULL, 'OLD', '{{\"topics\": [\"x\"]}}', {off}, '2026-01-04 00:00:00')"
        )
        .replace(", 1, '", &format!(", {}, '", if kind == Kind::Postgres { "TRUE" } else { "1" })),
    )
    .await;
    let rows = q.analysis_layers().await.unwrap();
    let seen: Vec<(&str, Option<&str>)> = rows.iter().map(|r| (r.tier.name(), r.key.as_deref())).collect();
    assert_eq!(
        seen,
        [("global", None), ("campaign_type", Some("delivery")), ("client", Some("ACME"))],
        "inactive rows left out"
    );
    assert_eq!(rows[2].layer.topics.as_deref(), Some(&["refund".to_string()][..]));
    assert!(rows[2].layer.instructions.as_deref().unwrap_or_default().contains("tone guidelines: warm"));

    let id = env.enqueue_bytes(q.as_ref(), "a.wav", &common::wav(8000, 1, 0.5)).await;
    exec(
        &env,
        &format!("UPDATE ai_call_recordings SET campaign_type = 'delivery', direction = 'inbound', client_ref = 'ACME' WHERE id = {id}"),
    )
    .await;
    let want = callscribe::queue::CallContext {
        campaign_type: Some("delivery".into()),
        direction: Some("inbound".into()),
        client_ref: Some("ACME".into()),
    };
    assert_eq!(q.call_context(id).await.unwrap(), want);
    let job = q.claim("w", 1).await.unwrap().pop().unwrap();
    assert_eq!(job.context, want);
    let tiers = callscribe::analyze::Tiers {
        global: callscribe::analyze::Template::builtin("loan_collection").unwrap(),
        ..Default::default()
    };
    let (t, applied) = tiers.select(&job.context, &rows);
    assert_eq!((t.name.as_str(), t.topics.as_slice()), ("delivery", &["refund".to_string()][..]));
    assert_eq!(
        applied.tiers,
        ["global:loan_collection", "global (table)", "campaign_type:delivery (table)", "client:ACME (table)"]
    );
}

macro_rules! conformance {
    ($name:ident, $kind:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn four_workers_complete_every_row_exactly_once() {
                super::four_workers_complete_every_row_exactly_once($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn killed_worker_process_is_rescued() {
                super::killed_worker_process_is_rescued($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn twin_worker_ids_are_fenced() {
                super::twin_worker_ids_are_fenced($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fencing_stops_a_worker_that_lost_its_lease() {
                super::fencing_stops_a_worker_that_lost_its_lease($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn backoff_priority_and_max_attempts() {
                super::backoff_priority_and_max_attempts($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn graceful_shutdown() {
                super::graceful_shutdown($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn admin_commands() {
                super::admin_commands($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rescue_fails_a_row_that_keeps_crashing_its_workers() {
                super::rescue_fails_a_row_that_keeps_crashing_its_workers($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn analysis_tiers_come_from_ai_configs_and_the_row_context() {
                super::analysis_tiers_come_from_ai_configs_and_the_row_context($kind).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rescue_fails_when_attempts_are_spent() {
                super::rescue_fails_when_attempts_are_spent($kind).await
            }
        }
    };
}

conformance!(postgres, Kind::Postgres);
conformance!(mariadb, Kind::Mysql);
conformance!(sqlite, Kind::Sqlite);
