//! The streaming path on the real local Kafka and Postgres: ticks published to
//! a topic of the test's own, the poller handing batches to the consumer
//! function, rows and dead letters checked exactly.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::CoinId;
use storage::PgStore;
use testkit::{TcpGate, TestDb};
use tokio_util::sync::CancellationToken;

mod common;

use common::*;

/// The consumer commits offsets once Postgres says "committed": that promise
/// holds only if the commit survives a crash, so the stack the tests run on
/// must commit durably, as RDS does.
#[tokio::test]
async fn the_database_commits_durably() {
    let db = TestDb::new().await;
    let client = db.client().await;
    for setting in ["synchronous_commit", "fsync"] {
        let row = client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "on", "{setting} must be on");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_coin_lands_exactly_once_with_its_prices() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let path = testkit::candle_file("BTCUSDT_1h.csv");
    let coin = stream::replay::coin_of_file(&path).unwrap();
    let candles = stream::replay::read_candles(&path, &coin).unwrap();
    assert_eq!(candles.len(), 31_973);

    topics.publisher().await.publish(&candles).await.unwrap();
    let (token, task) =
        spawn_poller(topics.poller(&group()), topics.consumer(db.store.clone(), &[coin]).await);
    db.wait_for_count("price_ticks", 31_973, WAIT).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 31_973);
    assert_eq!(stats.stored, 31_973);
    let rows = db
        .client()
        .await
        .query("SELECT event_time, price, volume FROM price_ticks ORDER BY event_time", &[])
        .await
        .unwrap();
    for (row, candle) in rows.iter().zip(&candles) {
        assert_eq!(row.get::<_, DateTime<Utc>>(0), candle.event_time);
        assert_eq!(row.get::<_, f64>(1), candle.price);
        assert_eq!(row.get::<_, Option<f64>>(2), candle.volume);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_handled_twice_adds_no_rows() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    topics.publisher().await.publish(simulated(&coins, 20)).await.unwrap();
    let poller = topics.poller(&group());
    let consumer = topics.consumer(db.store.clone(), &coins).await;
    let never = CancellationToken::new();
    let mut batch = Vec::new();
    while batch.len() < 100 {
        batch.extend(poller.next_batch(&never).await);
    }
    let event = poller.event(&batch);

    let first = consumer.handle_batch(&event).await.unwrap();
    let second = consumer.handle_batch(&event).await.unwrap();

    assert_eq!((first.stored, second.stored, second.duplicates), (100, 0, 100));
    assert_eq!(db.count("price_ticks").await, 100);
    assert_eq!(db.count("pipeline_runs").await, 2, "each batch is recorded as a consumer run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_db_commit_and_offset_commit_loses_and_doubles_nothing() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    topics.publisher().await.publish(simulated(&coins, 200)).await.unwrap();
    let group = group();

    // First life: one batch stored, then the process "dies" before committing.
    let first_stored = {
        let poller = topics.poller(&group);
        let batch = poller.next_batch(&CancellationToken::new()).await;
        let report = topics
            .consumer(db.store.clone(), &coins)
            .await
            .handle_batch(&poller.event(&batch))
            .await
            .unwrap();
        assert!(report.stored > 0);
        report.stored
    }; // dropped without commit

    // Second life: everything is delivered again, the stored part is absorbed.
    let (token, task) = spawn_poller(topics.poller(&group), topics.consumer(db.store.clone(), &coins).await);
    db.wait_for_count("price_ticks", 1000, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 1000);
    assert_eq!(stats.records, 1000, "nothing was committed, so every record came back");
    assert_eq!(stats.stored, 1000 - first_stored, "the redelivered part was absorbed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_go_to_the_dead_letter_topic_and_the_consumer_keeps_going() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    let publisher = topics.publisher().await;
    let poison: Vec<&[u8]> = vec![
        b"definitely not json",
        br#"{"v":1,"coin":"dogecoin","event_time":"2026-01-01T00:00:00Z","price":1,"interval_secs":5,"source":"simulated","seq":0}"#,
        br#"{"v":1,"coin":"bitcoin","event_time":"2026-01-01T00:00:00Z","price":-5,"interval_secs":5,"source":"simulated","seq":0}"#,
        br#"{"v":1,"coin":"bitcoin","price":5}"#,
    ];
    let ticks = simulated(&coins, 10);
    publisher.publish(&ticks[..25]).await.unwrap();
    for p in &poison {
        // A tracing header, as producers add: the dead letter must keep it.
        let headers = rdkafka::message::OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: "trace-id", value: Some(&b"t-42"[..]) });
        publisher.publish_raw(Some(b"bitcoin"), p, Some(headers)).await.unwrap();
    }
    publisher.publish(&ticks[25..]).await.unwrap();

    let (token, task) =
        spawn_poller(topics.poller(&group()), topics.consumer(db.store.clone(), &coins).await);
    db.wait_for_count("price_ticks", 50, WAIT).await;
    // Still consuming after the poison.
    publisher.publish(&simulated(&coins[..1], 12)[10..]).await.unwrap();
    db.wait_for_count("price_ticks", 52, WAIT).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 52);
    assert_eq!(stats.dead_lettered, 4);
    let letters = topics.dead_letters(4).await;
    let values: HashSet<Vec<u8>> = letters.iter().map(|(v, _, _)| v.clone()).collect();
    assert_eq!(values, poison.iter().map(|p| p.to_vec()).collect(), "original bytes kept");
    let reasons: Vec<&str> = letters.iter().map(|(_, r, _)| r.as_str()).collect();
    for want in ["not JSON", "unknown coin \"dogecoin\"", "price -5", "missing field"] {
        assert!(reasons.iter().any(|r| r.contains(want)), "{want} in {reasons:?}");
    }
    assert_eq!(
        topics.traced.load(std::sync::atomic::Ordering::Relaxed),
        4,
        "every dead letter kept its headers"
    );
}

/// Every client of the path over SASL_SSL with SCRAM, as against MSK or
/// Confluent Cloud: topics created by the admin client, ticks by the
/// producer, batches by the poller, a poison record by the dead-letter publisher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_path_runs_over_sasl_ssl() {
    let (db, topics) = (TestDb::new().await, Topics::secured().await);
    let coins = CoinId::defaults();
    let publisher = topics.publisher().await;
    let ticks = simulated(&coins, 20);
    publisher.publish(&ticks[..50]).await.unwrap();
    publisher.publish_raw(Some(b"bitcoin"), b"poison over TLS", None).await.unwrap();
    publisher.publish(&ticks[50..]).await.unwrap();

    let (token, task) =
        spawn_poller(topics.poller(&group()), topics.consumer(db.store.clone(), &coins).await);
    db.wait_for_count("price_ticks", 100, WAIT).await;
    let stats = stop(token, task).await;

    assert_eq!((db.count("price_ticks").await, stats.stored, stats.dead_lettered), (100, 100, 1));
    let letters = topics.dead_letters(1).await;
    assert_eq!(letters[0].0, b"poison over TLS");
    assert!(letters[0].1.contains("not JSON"), "{}", letters[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_mid_stream_loses_nothing() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    let gate = TcpGate::new(db.socket_addr()).await;
    let store = PgStore::connect(&db.config_via_port(gate.port())).await.unwrap();
    let publisher = topics.publisher().await;
    let (token, task) = spawn_poller(topics.poller(&group()), topics.consumer(store, &coins).await);

    let ticks = simulated(&coins, 120);
    publisher.publish(&ticks[..200]).await.unwrap();
    db.wait_for_count("price_ticks", 200, WAIT).await;

    gate.cut(); // Postgres unreachable: connections die, new ones are refused
    publisher.publish(&ticks[200..400]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(db.count("price_ticks").await, 200, "nothing written while away");

    gate.restore();
    publisher.publish(&ticks[400..]).await.unwrap();
    db.wait_for_count("price_ticks", 600, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 600);
    assert!(stats.failed_attempts > 0, "batches failed while Postgres was away: {stats:?}");
    assert_eq!(stats.stored, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pollers_in_one_group_split_the_partitions_and_store_every_tick_once() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    // Twenty keys spread over the six partitions.
    let coins: Vec<CoinId> = (0..20).map(|i| CoinId::parse(&format!("coin-{i:02}")).unwrap()).collect();
    let group = group();
    let (a, b) = (Arc::new(topics.poller(&group)), Arc::new(topics.poller(&group)));
    let (ta, ja) = spawn_poller(a.clone(), topics.consumer(db.store.clone(), &coins).await);
    let (tb, jb) = spawn_poller(b.clone(), topics.consumer(db.store.clone(), &coins).await);
    // Publish once both members own partitions, so the split is real.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while a.assigned_partitions() + b.assigned_partitions() < 6
        || a.assigned_partitions() == 0
        || b.assigned_partitions() == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "group did not settle");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    topics.publisher().await.publish(simulated(&coins, 100)).await.unwrap();
    db.wait_for_count("price_ticks", 2000, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sa, sb) = (stop(ta, ja).await, stop(tb, jb).await);

    assert_eq!(db.count("price_ticks").await, 2000);
    assert!(sa.records > 0 && sb.records > 0, "both pollers worked: {sa:?} {sb:?}");
    assert_eq!(sa.stored + sb.stored, 2000);
}
