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

#[async_trait]
pub trait Storage: Send + Sync {
    /// Stream object `key` of `bucket` (the row's `r2_bucket`; `None`: the
    /// configured bucket) into the file `dest`, refusing more than `max_bytes`.
    /// Returns the number of bytes written.
    async fn fetch(&self, bucket: Option<&str>, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError>;

    /// Store the local file `src` as object `key`.
    async fn put(&self, key: &str, src: &Path) -> Result<(), StorageError>;

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
