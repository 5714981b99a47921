//! Test harness: a fresh real database per test (PostgreSQL, MariaDB or SQLite),
//! a local recordings folder, audio generated on the spot, and the real
//! `callscribe` binary for process-level tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callscribe::config::{Config, RawConfig, Secret};
use callscribe::queue::{self, NewRecording, Queue, RecordingView};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mysql,
    Sqlite,
}

/// Server URLs; override with CALLSCRIBE_TEST_PG / CALLSCRIBE_TEST_MYSQL.
pub fn pg_base() -> String {
    std::env::var("CALLSCRIBE_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}
pub fn mysql_base() -> String {
    std::env::var("CALLSCRIBE_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// One test's world: its own database, recordings folder and temp space.
pub struct Env {
    pub kind: Kind,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A fresh, migrated database named after `test`.
    pub async fn new(kind: Kind, test: &str) -> Env {
        let env = Env::bare(kind, test).await;
        env.queue().await.migrate().await.unwrap();
        env
    }

    /// A fresh, empty database named after `test` (no tables).
    pub async fn bare(kind: Kind, test: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("cs_t_{}", test.replace(['-', ':'], "_")).to_lowercase();
        let url = match kind {
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base()))
                    .await
                    .expect("PostgreSQL must run on 127.0.0.1:5432 (see .ci/run)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
                format!("{}/{name}", pg_base())
            }
            Kind::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(&format!("{}/", mysql_base()))
                    .await
                    .expect("MariaDB must run on 127.0.0.1:3306 (see .ci/run)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
                format!("{}/{name}", mysql_base())
            }
            Kind::Sqlite => format!("sqlite://{}", dir.path().join("queue.db").display()),
        };
        std::fs::create_dir_all(dir.path().join("recordings")).unwrap();
        Env { kind, url, dir }
    }

    pub fn recordings(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    /// The configuration a test worker runs with: short intervals, no waiting.
    pub fn raw_config(&self) -> RawConfig {
        let mut raw = RawConfig::default();
        raw.database.url = Secret::new(self.url.clone());
        raw.database.max_connections = 4;
        raw.storage.local_dir = self.recordings().display().to_string();
        raw.storage.temp_dir = self.dir.path().display().to_string();
        raw.worker.poll_interval = "50ms".into();
        raw.worker.idle_max_interval = "200ms".into();
        raw.worker.heartbeat_interval = "500ms".into();
        raw.worker.stale_after = "3s".into();
        raw.worker.rescue_interval = "1s".into();
        raw.worker.shutdown_grace = "2s".into();
        raw.retry.backoff_base = "0s".into();
        raw.retry.backoff_max = "0s".into();
        // Queue tests do not need speech recognition; the transcription tests turn it on.
        raw.asr.enabled = false;
        raw
    }

    pub fn config(&self) -> Config {
        self.raw_config().validate().unwrap()
    }

    pub async fn queue(&self) -> Arc<dyn Queue> {
        queue::connect(&self.config().database).await.unwrap()
    }

    /// Put `bytes` in the recordings folder as `key` and queue a row for it.
    pub async fn enqueue_bytes(&self, q: &dyn Queue, key: &str, bytes: &[u8]) -> i64 {
        let path = self.recordings().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        q.enqueue(&NewRecording { r2_path: key.into(), ..Default::default() }).await.unwrap()
    }

    /// Environment variables that point the binary at this world.
    pub fn process_env(&self) -> Vec<(String, String)> {
        vec![
            ("CALLSCRIBE_DATABASE__URL".into(), self.url.clone()),
            ("CALLSCRIBE_STORAGE__LOCAL_DIR".into(), self.recordings().display().to_string()),
            ("CALLSCRIBE_STORAGE__TEMP_DIR".into(), self.dir.path().display().to_string()),
            ("CALLSCRIBE_WORKER__POLL_INTERVAL".into(), "50ms".into()),
            ("CALLSCRIBE_WORKER__IDLE_MAX_INTERVAL".into(), "200ms".into()),
            ("CALLSCRIBE_WORKER__HEARTBEAT_INTERVAL".into(), "500ms".into()),
            ("CALLSCRIBE_WORKER__STALE_AFTER".into(), "3s".into()),
            ("CALLSCRIBE_LOG__FORMAT".into(), "json".into()),
            ("CALLSCRIBE_ASR__ENABLED".into(), "false".into()),
        ]
    }

    /// The real binary, configured for this world.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_callscribe"));
        c.args(args).env_remove("CALLSCRIBE_CONFIG").current_dir(self.dir.path());
        for (k, v) in self.process_env() {
            c.env(k, v);
        }
        c
    }

    pub fn spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Child {
        let mut c = self.command(args);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// Run the binary to the end; returns (status code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

pub async fn row(q: &dyn Queue, id: i64) -> RecordingView {
    q.list(Some(id), 1).await.unwrap().into_iter().next().expect("row exists")
}

/// Poll until `f` holds for row `id`, or panic after `limit`.
pub async fn wait_for(
    q: &dyn Queue,
    id: i64,
    limit: Duration,
    what: &str,
    f: impl Fn(&RecordingView) -> bool,
) -> RecordingView {
    let start = Instant::now();
    loop {
        let r = row(q, id).await;
        if f(&r) {
            return r;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A "call" as WAV bytes: `secs` seconds of tone bursts (speech stand-in) and pauses.
pub fn wav(rate: u32, channels: u16, secs: f32) -> Vec<u8> {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut cur = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..(rate as f32 * secs) as u32 {
            let t = i as f32 / rate as f32;
            for ch in 0..channels {
                let on = ((t * 2.0) as u32 + ch as u32).is_multiple_of(2);
                let s =
                    if on { (2.0 * std::f32::consts::PI * (220.0 + 110.0 * ch as f32) * t).sin() * 0.3 } else { 0.0 };
                w.write_sample((s * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

/// Make a named pipe: opening it for reading blocks until a writer comes, which
/// stands in for a slow download in process-level tests.
pub fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success());
}

/// Send `sig` to a child process.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid we spawned.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0);
}

/// Wait for a child with a limit; returns its exit code.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st.code().unwrap_or(-1));
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `text` spoken by espeak-ng's `voice` at `wpm` words a minute, as 16 kHz mono
/// (espeak-ng from Debian: `.ci/run` installs it).
pub fn speak_16k(voice: &str, text: &str, wpm: u32, dir: &Path) -> Vec<f32> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let out = dir.join(format!("speak-{}.wav", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let st = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
        .arg(&out)
        .arg(text)
        .status()
        .expect("espeak-ng is needed (.ci/run installs it)");
    assert!(st.success());
    let mut r = hound::WavReader::open(&out).unwrap();
    let rate = r.spec().sample_rate;
    let x: Vec<f32> = r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect();
    callscribe::audio::resample::resample(&[x], rate, 16000).unwrap().remove(0)
}
