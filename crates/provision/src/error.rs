use storage::{BoxError, StorageError};

/// Something a deployment needs could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot set up the database")]
    Database(#[source] StorageError),

    #[error("cannot reach Kafka at {brokers} (KAFKA_BROKERS); is it up? `just up` starts the local stack")]
    Kafka {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },

    #[error("cannot use Kafka")]
    Stream(#[source] stream::StreamError),

    #[error(
        "cannot create or delete topics with KAFKA_SASL_MECHANISM=AWS_MSK_IAM (rdkafka's admin client does not \
         serve token refreshes): create them with the AWS console, `aws kafka` or kafka-topics.sh (docs/aws.md)"
    )]
    MskIamAdmin,

    #[error("cannot {action} topic {topic}")]
    Topic {
        action: &'static str,
        topic: String,
        #[source]
        source: rdkafka::types::RDKafkaErrorCode,
    },

    #[error(
        "cannot {action} bucket {bucket} (S3 at AWS_ENDPOINT_URL, or AWS); is it up? `just up` starts the local stack"
    )]
    Bucket {
        action: &'static str,
        bucket: String,
        #[source]
        source: BoxError,
    },

    #[error(
        "cannot create SNS topic {topic} (SNS at AWS_ENDPOINT_URL, or AWS); is it up? `just up` starts the local stack"
    )]
    SnsTopic {
        topic: String,
        #[source]
        source: BoxError,
    },
}
