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
    /// Stream object `key` into the file `dest`, refusing more than `max_bytes`.
    /// Returns the number of bytes written.
    async fn fetch(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError>;

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
    fn keys_that_escape_are_rejected() {
        for bad in ["", "/etc/passwd", "../secret.wav", "2025/../../x.wav", "a/..", "C:\\x.wav", "..\\x.wav", "a\0b"] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["2025/12/05/test.wav", "call..wav", "a/b/c.mp3", ".hidden.wav"] {
            assert!(validate_key(good).is_ok(), "{good:?} rejected");
        }
    }
}
