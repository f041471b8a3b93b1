//! What a deployment needs before its first run: its database (migrated), its
//! Kafka topics, its buckets and its alerts' SNS topic. Each function creates what is missing and
//! leaves what exists, so every call is safe to repeat.
//!
//! `cpctl setup` is the one place a deployment is set up, with these
//! functions; the tests' harness (`testkit`) makes each test's own database,
//! topic and bucket with the same ones. Scripts only start and stop services.

mod error;

use std::time::Duration;

use aws_sdk_s3::types::{ErrorDocument, IndexDocument, WebsiteConfiguration};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use storage::{BoxError, PgConfig, PgStore};
use stream::{KafkaConfig, KafkaContext, SaslMechanism};

pub use error::ProvisionError;

/// The database of a deployment, as [`database`] left it.
#[derive(Debug)]
pub struct Database {
    pub store: PgStore,
    /// It did not exist before.
    pub created: bool,
    /// Migrations applied by this call.
    pub migrations_applied: usize,
}

/// Creates the database `config` names if the server lacks it, then applies the
/// migrations not applied yet.
pub async fn database(config: &PgConfig) -> Result<Database, ProvisionError> {
    let (store, created) = storage::ensure_database(config).await.map_err(ProvisionError::Database)?;
    let migrations_applied = storage::migrate(&store).await.map_err(ProvisionError::Database)?;
    Ok(Database { store, created, migrations_applied })
}

/// An admin client, once the brokers answered with these credentials.
async fn admin(kafka: &KafkaConfig) -> Result<AdminClient<KafkaContext>, ProvisionError> {
    // rdkafka's admin client polls only its own queue, never the one that
    // asks for OAUTHBEARER tokens, so it would wait forever for one.
    if kafka.sasl_mechanism == Some(SaslMechanism::AwsMskIam) {
        return Err(ProvisionError::MskIamAdmin);
    }
    kafka.check(&[]).await.map_err(ProvisionError::Stream)?;
    let (config, context) = kafka.client_config().map_err(ProvisionError::Stream)?;
    config
        .create_with_context(context)
        .map_err(|source| ProvisionError::Kafka { brokers: kafka.brokers.clone(), source })
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// Creates the topics `(name, partitions)` that do not exist yet (replication
/// factor 1: the local broker is a single node).
pub async fn topics(kafka: &KafkaConfig, topics: &[(&str, i32)]) -> Result<(), ProvisionError> {
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|&(name, partitions)| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin(kafka)
        .await?
        .create_topics(&new, &admin_options())
        .await
        .map_err(|source| ProvisionError::Kafka { brokers: kafka.brokers.clone(), source })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, source)) => return Err(ProvisionError::Topic { action: "create", topic, source }),
        }
    }
    Ok(())
}

/// Deletes the topics that exist: the end of a scratch run (a test, a benchmark).
pub async fn delete_topics(kafka: &KafkaConfig, names: &[&str]) -> Result<(), ProvisionError> {
    let results = admin(kafka)
        .await?
        .delete_topics(names, &admin_options())
        .await
        .map_err(|source| ProvisionError::Kafka { brokers: kafka.brokers.clone(), source })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, source)) => return Err(ProvisionError::Topic { action: "delete", topic, source }),
        }
    }
    Ok(())
}

/// Creates bucket `name` unless it exists.
pub async fn bucket(s3: &aws_sdk_s3::Client, name: &str) -> Result<(), ProvisionError> {
    match s3.create_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()) =>
        {
            Ok(())
        }
        Err(e) => Err(ProvisionError::Bucket { action: "create", bucket: name.to_owned(), source: e.into() }),
    }
}

/// Creates bucket `name` unless it exists and has it serve its objects as a
/// website: `index.html` for a folder, site-gen's `404.html` for a missing page.
pub async fn website(s3: &aws_sdk_s3::Client, name: &str) -> Result<(), ProvisionError> {
    bucket(s3, name).await?;
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| ProvisionError::Bucket {
        action: "serve a website from",
        bucket: name.to_owned(),
        source,
    };
    let website = WebsiteConfiguration::builder()
        .index_document(IndexDocument::builder().suffix("index.html").build().map_err(|e| failed(e.into()))?)
        .error_document(ErrorDocument::builder().key("404.html").build().map_err(|e| failed(e.into()))?)
        .build();
    s3.put_bucket_website()
        .bucket(name)
        .website_configuration(website)
        .send()
        .await
        .map_err(|e| failed(e.into()))?;
    Ok(())
}

/// Creates SNS topic `name` unless it exists (SNS's CreateTopic is
/// idempotent); returns its ARN.
pub async fn sns_topic(sns: &aws_sdk_sns::Client, name: &str) -> Result<String, ProvisionError> {
    let failed = |source: BoxError| ProvisionError::SnsTopic { topic: name.to_owned(), source };
    let out = sns.create_topic().name(name).send().await.map_err(|e| failed(e.into()))?;
    out.topic_arn().map(str::to_owned).ok_or_else(|| failed("CreateTopic answered without an ARN".into()))
}
