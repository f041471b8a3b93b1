use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use tracing::instrument;

use crate::{ObjectStore, S3Config, StorageError};

/// Builds an S3 client: region and credentials from the AWS SDK's standard
/// chain, the endpoint from `config`. With an endpoint of its own (LocalStack,
/// moto) requests use path-style addressing, which those endpoints need.
pub async fn s3_client(config: &S3Config) -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let mut s3 = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(endpoint) = config.endpoint() {
        s3 = s3.endpoint_url(endpoint.as_str().trim_end_matches('/')).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(s3.build())
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
