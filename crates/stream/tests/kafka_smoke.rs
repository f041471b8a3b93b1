//! The local Kafka takes a record from an rdkafka producer and hands it back to
//! an rdkafka consumer. Runs against the real broker started by `just up`.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;

#[tokio::test]
async fn a_record_goes_through_the_local_broker() {
    let kafka: stream::KafkaConfig = testkit::config();
    let topic = testkit::TestTopic::create(&kafka, 1).await;
    let producer = stream::producer(&kafka).unwrap();
    let payload = format!("tick-{}", uuid::Uuid::new_v4());
    let delivery = producer
        .send(FutureRecord::to(topic.name()).key("bitcoin").payload(&payload), Duration::from_secs(20))
        .await
        .map_err(|(e, _)| e)
        .expect("the broker acknowledges the record");

    let consumer = stream::consumer(&kafka, &format!("smoke-{}", uuid::Uuid::new_v4())).unwrap();
    consumer.subscribe(&[topic.name()]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record within 30 s")
        .expect("no consumer error");
    assert_eq!(message.key(), Some(&b"bitcoin"[..]));
    assert_eq!(message.payload(), Some(payload.as_bytes()));
    assert_eq!((message.partition(), message.offset()), (delivery.partition, delivery.offset));
}
