#!/usr/bin/env python3
"""Reference Kafka-to-Postgres consumer for `just bench`, written the way the
original Python design would have: confluent-kafka (librdkafka) polling
batches, `json.loads` per message, psycopg 3 `executemany` of an
`INSERT ... ON CONFLICT DO NOTHING` into the same `price_ticks` table, the
database transaction committed first and the Kafka offsets after it (so a
crash redelivers, never loses).

It does none of the project consumer's validation, dead-lettering or run
records: it is the straightforward baseline the Rust consumer is measured
against. `cpctl bench-consume --reference-consumer` runs it on the same topic
and the same ticks, into the same (emptied) table, and prints the ratio.

Usage: DATABASE_URL=postgres://… reference_consumer.py --brokers B --topic T --group G --expect N [--batch 5000]
Prints one JSON object: {"stored": N, "seconds": S, "batches": K}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import psycopg
from confluent_kafka import Consumer, KafkaException

INSERT = """
    INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq,
                             kafka_partition, kafka_offset)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (coin_id, event_time, source) DO NOTHING
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True, help="stop once this many records are stored")
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    started = time.perf_counter()
    seen = batches = 0
    try:
        # From the environment, not the command line, where `ps` would show a password.
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            while seen < args.expect:
                messages = consumer.consume(num_messages=args.batch, timeout=1.0)
                if not messages:
                    continue
                rows = []
                for message in messages:
                    if message.error():
                        raise KafkaException(message.error())
                    tick = json.loads(message.value())
                    rows.append(
                        (
                            tick["coin"],
                            tick["event_time"],
                            tick["source"],
                            tick["price"],
                            tick.get("volume"),
                            tick["interval_secs"],
                            tick["seq"],
                            message.partition(),
                            message.offset(),
                        )
                    )
                with conn.cursor() as cursor:
                    cursor.executemany(INSERT, rows)
                conn.commit()
                consumer.commit(asynchronous=False)
                seen += len(rows)
                batches += 1
    finally:
        consumer.close()
    print(json.dumps({"stored": seen, "seconds": round(time.perf_counter() - started, 3), "batches": batches}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
