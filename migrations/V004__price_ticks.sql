-- Price ticks from the stream (simulated or replayed), written by the consumer.
-- The key makes redelivered records harmless: Kafka delivers at least once,
-- the table holds each (coin, instant, source) once.
CREATE TABLE price_ticks (
    coin_id         text             NOT NULL,
    event_time      timestamptz      NOT NULL,
    source          text             NOT NULL CHECK (source IN ('simulated', 'replay')),
    price           double precision NOT NULL CHECK (price > 0),
    volume          double precision CHECK (volume >= 0),
    interval_secs   integer          NOT NULL CHECK (interval_secs > 0),
    seq             bigint           NOT NULL,
    kafka_partition integer          NOT NULL,
    kafka_offset    bigint           NOT NULL,
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (coin_id, event_time, source)
);

CREATE INDEX price_ticks_ingested ON price_ticks (ingested_at);
