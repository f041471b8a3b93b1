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
    /// credentials chain, `AWS_ENDPOINT_URL` for LocalStack), as `storage::s3_client`.
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
            let what = match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => chain(&err),
            };
            Problem::Fetch(format!("{what}{hint}"))
        })?;
        output.secret_string.map(SecretString::from).ok_or_else(|| {
            Problem::Value(String::from("is binary; store the secret as a string (SecretString)"))
        })
    }
}

/// An error and its causes, as text: the service's code and message or the
/// network failure, never the secret's value (a failed call has none).
/// (`DisplayErrorContext` would append the whole error's `Debug` as well.)
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
