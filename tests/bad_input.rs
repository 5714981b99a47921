//! A bad-input corpus generated here: each bad recording ends `failed` with a
//! clear `processing_error`, and the worker goes on to process the good rows queued
//! after it. Run through the real binary on every database.

mod common;

use callscribe::queue::NewRecording;
use common::{row, Env, Kind};

/// A WAV header that declares `data_len` bytes of 16-bit mono 8 kHz audio,
/// followed by `actual` bytes of it.
fn wav_header(data_len: u32, actual: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend((0..actual).map(|i| (i % 251) as u8));
    v
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut seed = 0x9e3779b9u32;
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 24) as u8
        })
        .collect()
}

async fn corpus(kind: Kind) {
    let env = Env::new(kind, &format!("bad_input_{kind:?}")).await;
    let q = env.queue().await;
    let good = common::wav(8000, 1, 1.0);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 3);

    // (key, bytes or None for a missing object, what processing_error must say)
    let cases: Vec<(&str, Option<Vec<u8>>, &str)> = vec![
        ("empty.wav", Some(Vec::new()), "empty"),
        ("truncated.wav", Some(truncated), "truncated"),
        ("header-only.wav", Some(good[..20].to_vec()), "truncated"),
        ("random.mp3", Some(random_bytes(64 * 1024)), "not audio"),
        ("zero-length.wav", Some(wav_header(0, 0)), "no samples"),
        ("gigabytes.wav", Some(wav_header(4_000_000_000, 16_000)), "too long"),
        ("voice.amr", Some(b"#!AMR\n\x3c\x91\x17\x16\xbe\x66\x78\x00\x00\x00\x00\x00\x00".to_vec()), "AMR-NB"),
        (
            "notes.txt",
            Some(b"this is not audio at all, just some text\n".repeat(50)),
            "not a recognised audio container",
        ),
        ("missing/object.wav", None, "not found"),
        ("../../etc/passwd", None, "not allowed"),
    ];
    let mut ids = Vec::new();
    for (key, bytes, _) in &cases {
        let id = match bytes {
            Some(b) => env.enqueue_bytes(q.as_ref(), key, b).await,
            None => q.enqueue(&NewRecording { r2_path: key.to_string(), ..Default::default() }).await.unwrap(),
        };
        ids.push(id);
        // A good row after every bad one: the worker must reach it.
        ids.push(env.enqueue_bytes(q.as_ref(), &format!("good-after-{id}.wav"), &good).await);
    }
    let (code, out, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "{out}\n{err}");

    for (i, (key, _, expect)) in cases.iter().enumerate() {
        let bad = row(q.as_ref(), ids[2 * i]).await;
        assert_eq!(bad.status, "failed", "{key}: {bad:?}");
        assert_eq!(bad.attempts, 1, "{key}: a permanent error is not retried: {bad:?}");
        let e = bad.processing_error.clone().unwrap_or_default();
        assert!(
            e.to_lowercase().contains(&expect.to_lowercase()),
            "{key}: processing_error {e:?} should say {expect:?}"
        );
        assert_eq!(bad.analyses, 0, "{key}: no results for a failed row");
        let next = row(q.as_ref(), ids[2 * i + 1]).await;
        assert_eq!((next.status.as_str(), next.analyses), ("completed", 1), "good row after {key}: {next:?}");
    }
    // The worker said what it did, and nothing in its logs leaks the database URL.
    assert!(out.contains(&format!("{} completed, {} failed", cases.len(), cases.len())), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_sqlite() {
    corpus(Kind::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_postgres() {
    corpus(Kind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_mariadb() {
    corpus(Kind::Mysql).await
}

/// A database that is down: the worker exits with a clear error instead of
/// hanging in batch mode, and the message carries no password.
#[test]
fn dead_database_is_reported_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callscribe"))
        .args(["stats"])
        .env("CALLSCRIBE_DATABASE__URL", "postgres://app:hunter2@127.0.0.1:1/calls")
        .env("CALLSCRIBE_DATABASE__CONNECT_TIMEOUT", "2s")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("postgres://app:***@127.0.0.1:1/calls"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
    // The cause in the driver's words, not the pool's "pool timed out".
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
    assert!(!err.contains("pool timed out"), "{err}");
    // The same for MariaDB, and a database that does not exist is named.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callscribe"))
        .args(["stats"])
        .env("CALLSCRIBE_DATABASE__URL", "mysql://root@127.0.0.1:1/calls")
        .env("CALLSCRIBE_DATABASE__CONNECT_TIMEOUT", "2s")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callscribe"))
        .args(["stats"])
        .env("CALLSCRIBE_DATABASE__URL", format!("{}/cs_no_such_database", common::pg_base()))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"cs_no_such_database\" does not exist"), "{err}");

    // A password in the query string, and one that breaks the URL's syntax, set
    // through the environment layer, at trace level, in both log formats, for the
    // commands that print the URL.
    for url in ["postgres://app@127.0.0.1:1/calls?password=qs3cret", "postgres://app:pa/ss@wo%40rd@127.0.0.1:1/calls"] {
        for cmd in ["stats", "doctor", "run"] {
            for format in ["json", "pretty"] {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_callscribe"))
                    .args([cmd, "--log-level", "trace", "--log-format", format])
                    .env("CALLSCRIBE_DATABASE__URL", url)
                    .env("CALLSCRIBE_DATABASE__CONNECT_TIMEOUT", "1s")
                    .env("CALLSCRIBE_ASR__ENABLED", "false")
                    .current_dir(dir.path())
                    .output()
                    .unwrap();
                let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
                assert_ne!(out.status.code(), Some(0), "{cmd}: {all}");
                for secret in ["qs3cret", "pa/ss", "wo%40rd", "ss@wo"] {
                    assert!(!all.contains(secret), "{cmd} ({format}) printed {secret:?}: {all}");
                }
            }
        }
    }
}

/// Rows the app wrote with values SQLite keeps but the worker cannot read: a
/// priority of 'high' or 1e30, an `r2_path` stored as a BLOB. Before, the claim
/// panicked (exit 101) after claiming the row, five times per row. Now each such
/// row is failed with the column named, and the good row beside them completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_rows_are_failed_and_the_worker_goes_on() {
    use sqlx::Connection;
    let env = Env::new(Kind::Sqlite, "unreadable_rows").await;
    let q = env.queue().await;
    let good = env.enqueue_bytes(q.as_ref(), "good.wav", &common::wav(8000, 1, 0.5)).await;
    let mut c = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    let mut bad = Vec::new();
    for (values, column) in [("'a.wav', 'high'", "priority"), ("'b.wav', 1e30", "priority"), ("x'00ff', 0", "r2_path")]
    {
        let sql = format!(
            "INSERT INTO ai_call_recordings (r2_path, priority, processing_status) VALUES ({values}, 'pending') RETURNING id"
        );
        let (id,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.unwrap();
        bad.push((id, column));
    }
    let (code, out, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "{out}{err}");
    for (id, column) in bad {
        let r = row(q.as_ref(), id).await;
        assert_eq!((r.status.as_str(), r.attempts), ("failed", 1), "{r:?}");
        let e = r.processing_error.unwrap();
        assert!(e.contains("cannot be read") && e.contains(column), "{e}");
    }
    assert_eq!(row(q.as_ref(), good).await.status, "completed");
}

/// A line logged on a blocking thread (the decoder's warning about replaced
/// samples) carries the job's span: `job_id`, `attempt`, `worker_id`; and each job
/// ends with one summary line of structured fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_from_blocking_stages_carry_the_job() {
    let env = Env::new(Kind::Sqlite, "span_blocking").await;
    let q = env.queue().await;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let path = env.dir.path().join("nan.wav");
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..8000 {
        w.write_sample(if i == 100 { f32::NAN } else { 0.1 }).unwrap();
    }
    w.finalize().unwrap();
    let id = env.enqueue_bytes(q.as_ref(), "nan.wav", &std::fs::read(&path).unwrap()).await;
    let (code, _, err) = env.cli(&["run", "--drain"]);
    assert_eq!(code, 0, "{err}");
    let line = err.lines().find(|l| l.contains("samples replaced")).unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(line.contains(&format!("\"job_id\":{id}")) && line.contains("\"attempt\":1"), "{line}");
    assert!(line.contains("\"worker_id\":\""), "{line}");
    let summary: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "job finished")
        .collect();
    assert_eq!(summary.len(), 1, "one summary line per job: {err}");
    let (f, span) = (&summary[0]["fields"], &summary[0]["span"]);
    assert_eq!((f["outcome"].as_str(), span["job_id"].as_i64()), (Some("completed"), Some(id)), "{f} {span}");
    assert!(f["duration_ms"].as_u64().is_some() && f["fetch_ms"].as_u64().is_some(), "{f}");
    assert!((f["audio_seconds"].as_f64().unwrap() - 1.0).abs() < 0.01, "{f}");
}

/// A config file the service user cannot read (installed `0640 root:root` for a
/// `DynamicUser` unit) is named with the fix, and exits 2 (configuration: the
/// unit does not restart it), instead of "config key `(top level)`: Permission
/// denied". Runs the binary as `nobody` (setpriv); skipped when not root.
#[test]
fn an_unreadable_config_file_is_named() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to run the binary as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[worker]\nconcurrency = 1\n").unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_callscribe"), "--config"])
        .arg(&cfg)
        .arg("laravel-migration")
        .current_dir(dir.path())
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("cannot read the config file {}", cfg.display())), "{err}");
    assert!(err.contains("Permission denied") && err.contains("0644"), "{err}");
}
