use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use secrecy::SecretString;

use crate::{Problem, SecretSource};

/// Secrets Manager through the AWS SDK (`GetSecretValue`, current version).
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    /// A client from the standard AWS environment (`AWS_REGION`, the
    /// credentials chain, `AWS_ENDPOINT_URL` for LocalStack), read by the SDK
    /// itself: secrets are read before any configuration is loaded, to fill it.
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::new(aws_sdk_secretsmanager::Client::new(&shared))
    }

    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

impl SecretSource for SecretsManager {
    async fn secret_string(&self, arn: &str) -> Result<SecretString, Problem> {
        let output = self.client.get_secret_value().secret_id(arn).send().await.map_err(|err| {
            let hint = match &err {
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                    " (can the function reach Secrets Manager? in a VPC it needs a NAT gateway or a \
                     secretsmanager VPC endpoint)"
                }
                _ => match err.code() {
                    Some("AccessDeniedException") => {
                        " (the function's role needs secretsmanager:GetSecretValue on this secret, \
                         and kms:Decrypt on its key if it is a customer-managed one)"
                    }
                    Some("ResourceNotFoundException") => {
                        " (check the ARN, with its 6-character suffix, and that the region matches)"
                    }
                    Some("DecryptionFailure") => " (the role needs kms:Decrypt on the secret's KMS key)",
                    _ => "",
                },
            };
            Problem::Fetch { hint, source: Box::new(err) }
        })?;
        output.secret_string.map(SecretString::from).ok_or_else(|| {
            Problem::Value(String::from("is binary; store the secret as a string (SecretString)"))
        })
    }
}
