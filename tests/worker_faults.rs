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
