//! The local broker's SASL_SSL listener (`scripts/stack.sh`: a CA of its own,
//! SCRAM users): what a user of MSK or Confluent Cloud meets when a credential
//! or a certificate is wrong, proven on a real TLS listener.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use stream::StreamError;

/// A refusal is final: the check returns with it instead of waiting for its deadline.
const FAST: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_right_credentials_and_ca_reach_the_secured_listener() {
    let kafka = testkit::secured_kafka();
    kafka.check(&[]).await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_fails_fast_naming_the_variable() {
    let mut kafka = testkit::secured_kafka();
    kafka.sasl_password = Some(SecretString::from(String::from("not-the-password")));
    let start = Instant::now();
    let err = kafka.check(&[]).await.unwrap_err();
    assert!(start.elapsed() < FAST, "took {:?}", start.elapsed());
    assert!(matches!(err, StreamError::Authentication(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("KAFKA_SASL_PASSWORD") && text.contains("KAFKA_SASL_USERNAME="), "{text}");
    assert!(text.contains("SCRAM-SHA-512") && text.contains(&kafka.brokers), "{text}");
    assert!(!text.contains("not-the-password"), "no password in errors: {text}");
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_broker_fails_with_a_tls_error_naming_the_host() {
    let mut kafka = testkit::secured_kafka();
    let other_ca = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/other-ca.pem");
    kafka.ssl_ca_location = Some(other_ca.clone());
    let start = Instant::now();
    let err = kafka.check(&[]).await.unwrap_err();
    assert!(start.elapsed() < FAST, "took {:?}", start.elapsed());
    let StreamError::Tls(ref tls) = err else { panic!("expected a TLS error, got {err:?}") };
    let text = err.to_string();
    // librdkafka names the broker it was talking to: host and port.
    assert!(tls.reason.contains(&kafka.brokers), "{text}");
    assert!(tls.reason.contains("certificate verify failed"), "{text}");
    assert!(
        text.contains(&other_ca.display().to_string()) && text.contains("KAFKA_SSL_CA_LOCATION"),
        "{text}"
    );
}

#[tokio::test]
async fn the_system_trust_store_does_not_trust_a_private_ca() {
    // Verification stays on without a CA file: the local CA is in no system store.
    let mut kafka = testkit::secured_kafka();
    kafka.ssl_ca_location = None;
    let err = kafka.check(&[]).await.unwrap_err();
    assert!(matches!(err, StreamError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("the system's trust store"), "{err}");
}

#[tokio::test]
async fn a_missing_topic_is_named() {
    let kafka = testkit::secured_kafka();
    let err = kafka.check(&["no-such-topic-here"]).await.unwrap_err();
    assert!(
        matches!(err, StreamError::NoTopic { ref topic, .. } if topic == "no-such-topic-here"),
        "{err:?}"
    );
}
