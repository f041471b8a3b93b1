use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use tracing::instrument;

use crate::{ObjectStore, StorageError};

/// Builds an S3 client from the standard AWS environment (`AWS_REGION`,
/// credentials chain, `AWS_ENDPOINT_URL`). With a custom endpoint (LocalStack,
/// moto) requests use path-style addressing, which those endpoints need.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let custom_endpoint =
        std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(custom_endpoint).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// One S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

impl ObjectStore for S3Store {
    #[instrument(skip(self, body), fields(bucket = %self.bucket, bytes = body.len()))]
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StorageError::S3 {
                op: "put",
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                source: e.into(),
            })?;
        Ok(())
    }
}
