//! A local folder as the bucket: the embedded default (`./recordings`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{validate_key, Storage, StorageError};

pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        LocalStorage { root }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

fn io_error(key: &str, e: std::io::Error) -> StorageError {
    match e.kind() {
        std::io::ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
        std::io::ErrorKind::PermissionDenied => StorageError::Denied(key.to_string()),
        _ => StorageError::Transient(format!("{key:?}: {e}")),
    }
}

#[async_trait]
impl Storage for LocalStorage {
    /// The folder has no buckets: `bucket` is ignored.
    async fn fetch(&self, _bucket: Option<&str>, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError> {
        let src = self.path_of(key)?;
        // A link inside the folder must not lead out of it (to /etc/passwd, to
        // another tenant's recordings): resolve it and refuse anything outside.
        let real = tokio::fs::canonicalize(&src).await.map_err(|e| io_error(key, e))?;
        let root = tokio::fs::canonicalize(&self.root).await.map_err(|e| io_error(key, e))?;
        if !real.starts_with(&root) {
            return Err(StorageError::InvalidKey(key.to_string()));
        }
        let mut input = tokio::fs::File::open(&real).await.map_err(|e| io_error(key, e))?;
        let meta = input.metadata().await.map_err(|e| io_error(key, e))?;
        if meta.is_dir() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        if meta.is_file() && meta.len() > max_bytes {
            return Err(StorageError::TooLarge { key: key.to_string(), limit: max_bytes });
        }
        super::ensure_room(dest, meta.len())?;
        let mut out = tokio::fs::File::create(dest).await.map_err(|e| StorageError::TempFile(e.to_string()))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = input.read(&mut buf).await.map_err(|e| io_error(key, e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > max_bytes {
                return Err(StorageError::TooLarge { key: key.to_string(), limit: max_bytes });
            }
            out.write_all(&buf[..n]).await.map_err(|e| StorageError::TempFile(e.to_string()))?;
        }
        out.flush().await.map_err(|e| StorageError::TempFile(e.to_string()))?;
        Ok(total)
    }

    async fn put(&self, _bucket: Option<&str>, key: &str, src: &Path) -> Result<(), StorageError> {
        let dest = self.path_of(key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| io_error(key, e))?;
        }
        // Write beside and rename, so a worker never reads a half-copied file.
        let tmp = dest.with_extension("part~");
        tokio::fs::copy(src, &tmp).await.map_err(|e| io_error(key, e))?;
        tokio::fs::rename(&tmp, &dest).await.map_err(|e| io_error(key, e))?;
        Ok(())
    }

    async fn delete(&self, _bucket: Option<&str>, key: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(key, e)),
            _ => Ok(()),
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|e| StorageError::Other(format!("folder {}: {e}", self.root.display())))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_fetch_limit_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::new(dir.path().join("rec"));
        store.check().await.unwrap();
        let src = dir.path().join("a.wav");
        std::fs::write(&src, vec![7u8; 1000]).unwrap();
        store.put(None, "2025/12/05/a.wav", &src).await.unwrap();
        let dest = dir.path().join("out");
        assert_eq!(store.fetch(None, "2025/12/05/a.wav", &dest, 1000).await.unwrap(), 1000);
        assert_eq!(std::fs::read(&dest).unwrap(), vec![7u8; 1000]);
        assert!(matches!(store.fetch(None, "2025/12/05/a.wav", &dest, 999).await, Err(StorageError::TooLarge { .. })));
        assert!(matches!(store.fetch(None, "nope.wav", &dest, 10).await, Err(StorageError::NotFound(_))));
        assert!(matches!(store.fetch(None, "../a.wav", &dest, 10).await, Err(StorageError::InvalidKey(_))));
        // A link that leads out of the folder is refused; one that stays inside is followed.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"not a recording").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("rec/escape.wav")).unwrap();
        assert!(matches!(store.fetch(None, "escape.wav", &dest, 100).await, Err(StorageError::InvalidKey(_))));
        std::os::unix::fs::symlink(dir.path().join("rec/2025/12/05/a.wav"), dir.path().join("rec/inside.wav")).unwrap();
        assert_eq!(store.fetch(None, "inside.wav", &dest, 1000).await.unwrap(), 1000);
    }
}
