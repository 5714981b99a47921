//! S3 API storage through `aws-sdk-s3`: Cloudflare R2 (region `auto`), MinIO
//! and SeaweedFS (path-style addressing), and AWS itself. Credentials come from
//! the configuration (never logged); an empty key pair falls back to anonymous
//! access. Checksums are computed only where the API requires them, because R2
//! and older MinIO reject the SDK's newer default trailers.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tokio::io::AsyncWriteExt;

use super::{validate_key, Storage, StorageError};
use crate::config::S3Config;

pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
}

impl S3Storage {
    pub fn new(cfg: &S3Config) -> Self {
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .force_path_style(cfg.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .operation_attempt_timeout(cfg.timeout)
                    .build(),
            );
        if let Some(ep) = &cfg.endpoint {
            b = b.endpoint_url(ep);
        }
        if !cfg.access_key_id.is_empty() {
            b = b.credentials_provider(Credentials::new(
                cfg.access_key_id.expose(),
                cfg.secret_access_key.expose(),
                None,
                None,
                "callscribe-config",
            ));
        } else {
            b = b.allow_no_auth();
        }
        S3Storage {
            client: Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            endpoint: cfg.endpoint.clone().unwrap_or_else(|| "AWS".into()),
        }
    }

    fn object_key(&self, key: &str) -> Result<String, StorageError> {
        validate_key(key)?;
        Ok(if self.prefix.is_empty() { key.to_string() } else { format!("{}/{}", self.prefix, key) })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Decide, from what S3 answered, whether a failure is permanent.
/// The innermost cause of an error, in its own words (`Connection refused (os
/// error 111)`), instead of the SDK's nested debug dump.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut e = err;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

fn classify<E>(endpoint: &str, key: &str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("");
            match (status, code) {
                (404, _) | (_, "NoSuchKey") | (_, "NotFound") => StorageError::NotFound(key.to_string()),
                (_, "NoSuchBucket") => StorageError::Other(format!("bucket does not exist (reading {key:?})")),
                (401 | 403, _) => StorageError::Denied(key.to_string()),
                (408 | 429, _) | (500..=599, _) => {
                    StorageError::Transient(format!("HTTP {status} {code} reading {key:?}"))
                }
                _ => StorageError::Other(format!("HTTP {status} {code} reading {key:?}")),
            }
        }
        SdkError::DispatchFailure(_) => StorageError::Transient(format!(
            "cannot reach the S3 endpoint {endpoint} (storage.s3.endpoint): {}",
            root_cause(&err)
        )),
        SdkError::TimeoutError(_) => StorageError::Transient(format!(
            "the S3 endpoint {endpoint} did not answer in time (storage.s3.timeout) reading {key:?}"
        )),
        SdkError::ResponseError(_) => StorageError::Transient(format!(
            "unreadable answer from the S3 endpoint {endpoint} reading {key:?}: {}",
            root_cause(&err)
        )),
        _ => StorageError::Other(format!("{}", DisplayErrorContext(&err))),
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn fetch(&self, bucket: Option<&str>, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError> {
        let object = self.object_key(key)?;
        let bucket = bucket.filter(|b| !b.trim().is_empty()).unwrap_or(&self.bucket);
        let resp = self
            .client
            .get_object()
            .bucket(bucket)
            .key(&object)
            .send()
            .await
            .map_err(|e| classify(&self.endpoint, key, e))?;
        if let Some(len) = resp.content_length() {
            if len as u64 > max_bytes {
                return Err(StorageError::TooLarge { key: key.to_string(), limit: max_bytes });
            }
            super::ensure_room(dest, len.max(0) as u64)?;
        }
        let mut body = resp.body;
        let mut out = tokio::fs::File::create(dest).await.map_err(|e| StorageError::TempFile(e.to_string()))?;
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::Transient(format!("download of {key:?} broke off: {e}")))?;
            total += chunk.len() as u64;
            if total > max_bytes {
                return Err(StorageError::TooLarge { key: key.to_string(), limit: max_bytes });
            }
            out.write_all(&chunk).await.map_err(|e| StorageError::TempFile(e.to_string()))?;
        }
        out.flush().await.map_err(|e| StorageError::TempFile(e.to_string()))?;
        Ok(total)
    }

    async fn put(&self, bucket: Option<&str>, key: &str, src: &Path) -> Result<(), StorageError> {
        let object = self.object_key(key)?;
        let bucket = bucket.filter(|b| !b.trim().is_empty()).unwrap_or(&self.bucket);
        let body =
            ByteStream::from_path(src).await.map_err(|e| StorageError::Other(format!("{}: {e}", src.display())))?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(&object)
            .body(body)
            .send()
            .await
            .map_err(|e| classify(&self.endpoint, key, e))?;
        Ok(())
    }

    async fn delete(&self, bucket: Option<&str>, key: &str) -> Result<(), StorageError> {
        let object = self.object_key(key)?;
        let bucket = bucket.filter(|b| !b.trim().is_empty()).unwrap_or(&self.bucket);
        match self.client.delete_object().bucket(bucket).key(&object).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify(&self.endpoint, key, e) {
                StorageError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| {
            match classify(&self.endpoint, "(bucket)", e) {
                StorageError::NotFound(_) => StorageError::Other(format!("bucket {:?} does not exist", self.bucket)),
                other => other,
            }
        })?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3 bucket {:?} at {}", self.bucket, self.endpoint)
    }
}
