//! The worker's own faults never spend a row's attempts (issue 8): the real
//! daemon with a temp folder it cannot write to (a file-size limit, as a full
//! disk would). The row goes back to `pending` untouched, and completes on its
//! first counted attempt once the fault clears. (A rotated S3 key and a worker
//! that waits out a bucket that does not exist yet are in `tests/s3_storage.rs`.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::{row, Env, Kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_temp_disk_is_the_workers_fault() {
    let env = Env::new(Kind::Postgres, "fault_temp_disk").await;
    let q = env.queue().await;
    let id = env.enqueue_bytes(q.as_ref(), "call.wav", &common::wav(8000, 1, 2.0)).await;
    // `ulimit -f 4`: the 32 KB download cannot be written (EFBIG), as on a full disk.
    let mut c = Command::new("sh");
    c.args(["-c", "ulimit -f 4; exec \"$0\" run --drain", env!("CARGO_BIN_EXE_callscribe")])
        .current_dir(env.dir.path())
        .env("CALLSCRIBE_WORKER__FAULT_BACKOFF", "100ms");
    for (k, v) in env.process_env() {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "the worker is not killed by the limit: {out}{err}");
    assert!(out.contains("1 deferred for a worker fault"), "{out}");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 0), "{r:?}");
    let e = r.processing_error.unwrap();
    assert!(e.starts_with("worker fault") && e.contains("temporary copy"), "{e}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, out, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts, r.processing_error.as_deref()), ("completed", 1, None), "{r:?}");
}

/// A worker process killed at the end of the test, even after a failure.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PostgreSQL cluster of the test's own (Debian's `pg_createcluster`), so the
/// test can stop and start it; dropped at the end, even after a failure.
struct OwnPostgres {
    version: String,
    name: String,
    port: u16,
}

impl OwnPostgres {
    fn start(name: &str, port: u16) -> OwnPostgres {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("PostgreSQL's Debian packaging (.ci/run installs it)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max()
            .unwrap();
        let _ = Command::new("pg_dropcluster").args([&version, name, "--stop"]).output();
        let port_s = port.to_string();
        let st = Command::new("pg_createcluster")
            .args([&version, name, "-p", &port_s, "--", "--auth=trust"])
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let pg = OwnPostgres { version, name: name.into(), port };
        pg.ctl("start");
        pg
    }

    fn ctl(&self, what: &str) {
        let mut args = vec![self.version.as_str(), self.name.as_str(), what];
        if what == "stop" {
            args.extend(["-m", "immediate"]);
        }
        let st = Command::new("pg_ctlcluster").args(&args).output().unwrap();
        assert!(st.status.success(), "pg_ctlcluster {what}: {}", String::from_utf8_lossy(&st.stderr));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A test world whose database is this cluster: the configuration and a
    /// migrated queue.
    async fn world(
        &self,
        test: &str,
    ) -> (Env, callscribe::config::Config, std::sync::Arc<dyn callscribe::queue::Queue>) {
        let env = Env::bare(Kind::Postgres, test).await;
        let mut raw = env.raw_config();
        raw.database.url = callscribe::config::Secret::new(self.url());
        let cfg = raw.validate().unwrap();
        let q = callscribe::queue::connect(&cfg.database).await.unwrap();
        q.migrate().await.unwrap();
        (env, cfg, q)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster").args([&self.version, &self.name, "--stop"]).output();
    }
}

/// The database goes away while a job is running (an immediate stop of its
/// server) and comes back 30 s later. The finished job keeps its results and its
/// lease, is written once the database answers (the old worker gave up after
/// ~25 s and left the row `processing`), and is never processed twice; claiming
/// resumes. Both delays are printed as measurements, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_and_repeats_nothing() {
    let pg = OwnPostgres::start("cs_outage", 55441);
    let (env, cfg, q) = pg.world("outage_unused").await;
    // The first job blocks on a FIFO until the database is down.
    let fifo = env.recordings().join("slow.wav");
    common::mkfifo(&fifo);
    let slow =
        q.enqueue(&callscribe::queue::NewRecording { r2_path: "slow.wav".into(), ..Default::default() }).await.unwrap();
    let mut c = env.command(&["run"]);
    c.env("CALLSCRIBE_DATABASE__URL", pg.url())
        .env("CALLSCRIBE_WORKER__STALE_AFTER", "60s")
        .env("CALLSCRIBE_DATABASE__CONNECT_TIMEOUT", "2s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut worker = Reap(c.spawn().unwrap());
    common::wait_for(q.as_ref(), slow, Duration::from_secs(20), "the claim", |r| r.status == "processing").await;
    q.close().await;

    pg.ctl("stop");
    // The job finishes while the database is down.
    std::fs::write(&fifo, common::wav(8000, 1, 1.0)).unwrap();
    // Longer than the ~25 s of write retries the worker used to give up after.
    tokio::time::sleep(Duration::from_secs(30)).await;
    pg.ctl("start");
    let back = std::time::Instant::now();
    let q = callscribe::queue::connect(&cfg.database).await.unwrap();
    let r = common::wait_for(q.as_ref(), slow, Duration::from_secs(30), "the held result", |r| r.status == "completed")
        .await;
    let written_after = back.elapsed();
    assert_eq!((r.attempts, r.analyses), (1, 1), "written once, never processed twice: {r:?}");

    // Claiming resumes: a new row is taken soon after.
    let next = env.enqueue_bytes(q.as_ref(), "next.wav", &common::wav(8000, 1, 0.5)).await;
    let r =
        common::wait_for(q.as_ref(), next, Duration::from_secs(30), "a new claim", |r| r.status == "completed").await;
    let claimed_after = back.elapsed();
    assert_eq!(r.attempts, 1);
    eprintln!(
        "database back: held result written after {:.1} s, next row completed after {:.1} s",
        written_after.as_secs_f64(),
        claimed_after.as_secs_f64()
    );
    common::signal(&worker.0, libc::SIGTERM);
    assert_eq!(common::wait_exit(&mut worker.0, Duration::from_secs(10)), Some(0));
    q.close().await;
}

/// GET `path` on the worker's metrics listener: (status, body).
async fn http_get(port: u16, path: &str) -> (u16, String) {
    match reqwest::get(format!("http://127.0.0.1:{port}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// The samples of a `/metrics` body, parsed as Prometheus text: (name, labels) → value.
fn scrape(body: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let s = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    s.samples
        .into_iter()
        .map(|x| {
            let v = match x.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            (x.metric, x.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), v)
        })
        .collect()
}

fn sample(
    samples: &[(String, std::collections::BTreeMap<String, String>, f64)],
    name: &str,
    label: (&str, &str),
) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l.get(label.0).map(String::as_str) == Some(label.1))
        .map_or(0.0, |s| s.2)
}

/// `metrics.listen`: `/metrics` parses as Prometheus text and its counters move
/// with a job (claimed, completed, stage times, audio seconds, queue depth);
/// `/healthz` answers; `/readyz` turns unready (503, naming the database) while
/// the test's own PostgreSQL is stopped and ready again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_follow_the_work_and_the_database() {
    let pg = OwnPostgres::start("cs_metrics", 55442);
    let (env, _, q) = pg.world("metrics_unused").await;
    let port = 55443u16;
    let mut c = env.command(&["run"]);
    c.env("CALLSCRIBE_DATABASE__URL", pg.url())
        .env("CALLSCRIBE_DATABASE__CONNECT_TIMEOUT", "1s")
        .env("CALLSCRIBE_METRICS__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut worker = Reap(c.spawn().unwrap());
    let t = std::time::Instant::now();
    while http_get(port, "/healthz").await.0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(20), "no /healthz");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(port, "/readyz").await, (200, "ready\n".to_string()));
    // `callscribe health` (the container HEALTHCHECK) asks the same endpoints.
    let health = |ready: bool| {
        let mut c = env.command(if ready { &["health", "--ready"][..] } else { &["health"][..] });
        let o = c.env("CALLSCRIBE_METRICS__LISTEN", format!("0.0.0.0:{port}")).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    assert_eq!(health(false), (Some(0), "ok\n".to_string()));
    assert_eq!(health(true), (Some(0), "ready\n".to_string()));
    let before = scrape(&http_get(port, "/metrics").await.1);
    assert_eq!(sample(&before, "callscribe_jobs_total", ("outcome", "completed")), 0.0);

    let id = env.enqueue_bytes(q.as_ref(), "call.wav", &common::wav(8000, 1, 2.0)).await;
    common::wait_for(q.as_ref(), id, Duration::from_secs(20), "completed", |r| r.status == "completed").await;
    let (code, body) = http_get(port, "/metrics").await;
    assert_eq!(code, 200);
    let after = scrape(&body);
    assert_eq!(sample(&after, "callscribe_jobs_total", ("outcome", "claimed")), 1.0, "{body}");
    assert_eq!(sample(&after, "callscribe_jobs_total", ("outcome", "completed")), 1.0, "{body}");
    assert_eq!(sample(&after, "callscribe_queue_rows", ("status", "completed")), 1.0, "{body}");
    assert_eq!(sample(&after, "callscribe_stage_seconds_count", ("stage", "fetch")), 1.0, "{body}");
    assert_eq!(sample(&after, "callscribe_stage_seconds_count", ("stage", "decode")), 1.0, "{body}");
    assert_eq!(sample(&after, "callscribe_stage_seconds_count", ("stage", "write")), 1.0, "{body}");
    // Transcription is off in this world: its stages are not observed as zeros.
    assert_eq!(sample(&after, "callscribe_stage_seconds_count", ("stage", "asr")), 0.0, "{body}");
    let audio = after.iter().find(|s| s.0 == "callscribe_audio_seconds_total").map(|s| s.2);
    assert!(audio.is_some_and(|a| (a - 2.0).abs() < 0.01), "{body}");

    pg.ctl("stop");
    let t = std::time::Instant::now();
    let (code, why) = loop {
        let r = http_get(port, "/readyz").await;
        if r.0 != 200 || t.elapsed() > Duration::from_secs(20) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, 503, "{why}");
    assert!(why.starts_with("database"), "{why}");
    assert_eq!(http_get(port, "/healthz").await.0, 200, "alive while the database is away");
    assert_eq!(health(true).0, Some(1), "not ready while the database is away");
    assert_eq!(health(false).0, Some(0));
    pg.ctl("start");
    let t = std::time::Instant::now();
    while http_get(port, "/readyz").await.0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(30), "not ready again after the database came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    common::signal(&worker.0, libc::SIGTERM);
    assert_eq!(common::wait_exit(&mut worker.0, Duration::from_secs(10)), Some(0));
    q.close().await;
}
