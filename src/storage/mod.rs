//! Where recordings live: an S3-compatible bucket ([`s3`]: Cloudflare R2, MinIO,
//! AWS) or a local folder ([`local`], the embedded default). Downloads stream
//! to a temporary file under a size limit; whether a failure is worth retrying is
//! decided here ([`StorageError::is_transient`]).

pub mod local;
pub mod s3;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{StorageBackend, StorageConfig};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object key {0:?} is not allowed (empty, absolute, or escapes the folder with `..`)")]
    InvalidKey(String),
    #[error("object {0:?} not found")]
    NotFound(String),
    #[error("access denied to object {0:?} (check the credentials and bucket policy)")]
    Denied(String),
    #[error("object {key:?} is larger than the {limit}-byte limit (storage.max_download_bytes)")]
    TooLarge { key: String, limit: u64 },
    #[error("storage unavailable: {0}")]
    Transient(String),
    /// Writing the local temporary copy failed (disk full, file-size limit):
    /// the worker's fault, not the object's.
    #[error("writing the temporary copy failed: {0}")]
    TempFile(String),
    #[error("storage error: {0}")]
    Other(String),
}

impl StorageError {
    /// Timeouts, throttling, 5xx and connection trouble: worth a retry.
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Transient(_))
    }
}

/// Room kept free on the temp folder's disk beyond the download itself.
pub const DISK_MARGIN: u64 = 64 << 20;

/// Bytes free to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is written by statvfs.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Refuse a download of `len` bytes into `dest` when its disk cannot take it
/// (plus [`DISK_MARGIN`]): the worker's fault, said before a byte is written.
pub fn ensure_room(dest: &Path, len: u64) -> Result<(), StorageError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    match free_bytes(dir) {
        Ok(free) if free < len.saturating_add(DISK_MARGIN) => Err(StorageError::TempFile(format!(
            "not enough free space in {} for a {:.1} MB download: {:.1} MB free (storage.temp_dir)",
            dir.display(),
            len as f64 / 1e6,
            free as f64 / 1e6
        ))),
        _ => Ok(()),
    }
}

/// Remove temporary downloads left by worker processes that are gone (killed
/// mid-job): files named `callscribe-<pid>-…` in `dir` whose process no longer
/// exists. Files of running workers sharing the folder are left alone. Returns
/// how many were removed.
pub fn sweep_temp(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("callscribe-"))
            .and_then(|rest| rest.split('-').next().and_then(|p| p.parse::<i32>().ok()))
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive && e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The prefix of this process's temporary downloads (see [`sweep_temp`]).
pub fn temp_prefix() -> String {
    format!("callscribe-{}-", std::process::id())
}

#[async_trait]
pub trait Storage: Send + Sync {
    /// Stream object `key` of `bucket` (the row's `r2_bucket`; `None`: the
    /// configured bucket) into the file `dest`, refusing more than `max_bytes`.
    /// Returns the number of bytes written.
    async fn fetch(&self, bucket: Option<&str>, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError>;

    /// Store the local file `src` as object `key` of `bucket` (`None`: the
    /// configured bucket).
    async fn put(&self, bucket: Option<&str>, key: &str, src: &Path) -> Result<(), StorageError>;

    /// Remove object `key` of `bucket`; a missing object is not an error.
    async fn delete(&self, bucket: Option<&str>, key: &str) -> Result<(), StorageError>;

    /// Whether the bucket or folder is reachable.
    async fn check(&self) -> Result<(), StorageError>;

    /// A human description without secrets, for `doctor` and logs.
    fn describe(&self) -> String;
}

/// Build the configured storage.
pub async fn open(cfg: &StorageConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match &cfg.backend {
        StorageBackend::Local { dir } => Arc::new(local::LocalStorage::new(dir.clone())),
        StorageBackend::S3(s3cfg) => Arc::new(s3::S3Storage::new(s3cfg)),
    })
}

/// The object key of an `r2_path`. The app stores a key
/// (`call-recordings/2025/12/05/x.gsm`), but a full URL is accepted too:
/// `https://<account>.r2.cloudflarestorage.com/<bucket>/<key>` (path style),
/// `https://<bucket>.<host>/<key>` or a public `https://pub-….r2.dev/<key>`. The
/// URL's path is percent-decoded, and a first segment equal to the row's bucket
/// (or the configured one) is dropped; the query string (a presigned URL's
/// signature) is ignored.
pub fn object_key(r2_path: &str, bucket: Option<&str>) -> Result<String, StorageError> {
    let p = r2_path.trim();
    let lower = p.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return Ok(p.to_string());
    };
    let offset = p.len() - rest.len();
    let after_scheme = &p[offset..];
    let path = after_scheme.find('/').map(|i| &after_scheme[i + 1..]).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path).ok_or_else(|| StorageError::InvalidKey(r2_path.to_string()))?;
    let key = match (bucket, decoded.split_once('/')) {
        (Some(b), Some((first, rest))) if !b.is_empty() && first == b => rest.to_string(),
        _ => decoded,
    };
    validate_key(&key)?;
    Ok(key)
}

/// `%XX` decoding of a URL path; `None` on a malformed escape or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reject keys that are empty, absolute, or that climb out of their root.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.starts_with('\\')
        || key.contains('\0')
        || key.split(['/', '\\']).any(|part| part == "..")
        || (key.len() > 1 && key.as_bytes()[1] == b':');
    if bad {
        Err(StorageError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_downloads_of_gone_workers_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A pid far above pid_max is never a running process.
        let gone = dir.path().join("callscribe-999999999-abc");
        let mine = dir.path().join(format!("{}xyz", temp_prefix()));
        let other = dir.path().join("unrelated-1-file");
        for f in [&gone, &mine, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(sweep_temp(dir.path()), 1);
        assert!(!gone.exists() && mine.exists() && other.exists());
    }

    #[test]
    fn a_download_the_disk_cannot_take_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let free = free_bytes(dir.path()).unwrap();
        assert!(ensure_room(&dest, 1).is_ok() || free < DISK_MARGIN);
        let e = ensure_room(&dest, free).unwrap_err();
        assert!(matches!(e, StorageError::TempFile(_)), "{e:?}");
        assert!(e.to_string().contains("not enough free space"), "{e}");
        assert!(!dest.exists());
    }

    #[test]
    fn urls_reduce_to_keys() {
        let k = |p: &str, b: Option<&str>| object_key(p, b).unwrap();
        assert_eq!(k("call-recordings/2025/12/05/a_x.gsm", Some("calls")), "call-recordings/2025/12/05/a_x.gsm");
        assert_eq!(
            k(
                "https://acct.r2.cloudflarestorage.com/calls/call-recordings/2025/a%20b.gsm?X-Amz-Signature=1",
                Some("calls")
            ),
            "call-recordings/2025/a b.gsm"
        );
        assert_eq!(k("https://pub-123.r2.dev/call-recordings/x.wav", Some("calls")), "call-recordings/x.wav");
        assert_eq!(k("HTTPS://calls.s3.amazonaws.com/x/y.mp3", None), "x/y.mp3");
        assert!(object_key("https://host/calls/../../etc/passwd", Some("calls")).is_err());
        assert!(object_key("https://host/%zz", None).is_err());
        assert!(object_key("https://host/", None).is_err());
    }

    #[test]
    fn keys_that_escape_are_rejected() {
        for bad in ["", "/etc/passwd", "../secret.wav", "2025/../../x.wav", "a/..", "C:\\x.wav", "..\\x.wav", "a\0b"] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["2025/12/05/test.wav", "call..wav", "a/b/c.mp3", ".hidden.wav"] {
            assert!(validate_key(good).is_ok(), "{good:?} rejected");
        }
    }
}
