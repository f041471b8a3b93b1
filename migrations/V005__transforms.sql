-- Outputs of the transform function (Polars), recomputed per affected UTC day.

-- Observations loaded from files (`just load-history`) never went through Kafka.
ALTER TABLE price_ticks ALTER COLUMN kafka_partition DROP NOT NULL;
ALTER TABLE price_ticks ALTER COLUMN kafka_offset DROP NOT NULL;
CREATE INDEX price_ticks_time ON price_ticks (event_time);
CREATE INDEX market_snapshots_time ON market_snapshots (observed_at);
CREATE INDEX market_history_time ON market_history (ts);

-- How far each input has been transformed: rows ingested up to this instant.
CREATE TABLE transform_watermarks (
    input          text        PRIMARY KEY,
    ingested_until timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE price_hourly (
    coin_id      text             NOT NULL,
    hour         timestamptz      NOT NULL,
    avg_price    double precision NOT NULL,
    open         double precision NOT NULL,
    high         double precision NOT NULL,
    low          double precision NOT NULL,
    close        double precision NOT NULL,
    observations integer          NOT NULL,
    PRIMARY KEY (coin_id, hour),
    CHECK (low <= avg_price AND avg_price <= high)
);

CREATE TABLE daily_ranking (
    day             date             NOT NULL,
    coin_id         text             NOT NULL,
    last_price      double precision NOT NULL,
    prev_last_price double precision NOT NULL,
    performance     double precision NOT NULL,
    rank            integer          NOT NULL CHECK (rank >= 1),
    PRIMARY KEY (day, coin_id),
    UNIQUE (day, rank)
);

CREATE TABLE price_alerts (
    coin_id      text             NOT NULL,
    at           timestamptz      NOT NULL,
    window_secs  integer          NOT NULL,
    change_pct   double precision NOT NULL,
    direction    text             NOT NULL CHECK (direction IN ('up', 'down')),
    price_before double precision NOT NULL,
    price_after  double precision NOT NULL,
    run_id       uuid             NOT NULL,
    PRIMARY KEY (coin_id, at, window_secs)
);

CREATE TABLE daily_volume (
    coin_id    text             NOT NULL,
    day        date             NOT NULL,
    -- 'interval_sum': sum of interval volumes × price (ticks, candles);
    -- 'rolling_24h': CoinGecko's rolling 24 h figure at the day's last observation.
    method     text             NOT NULL CHECK (method IN ('interval_sum', 'rolling_24h')),
    volume_usd double precision NOT NULL,
    PRIMARY KEY (coin_id, day, method)
);

-- Rows the cleaning step dropped, by reason, per transform run.
CREATE TABLE data_quality (
    run_id uuid   NOT NULL REFERENCES pipeline_runs (run_id),
    reason text   NOT NULL,
    rows   bigint NOT NULL,
    PRIMARY KEY (run_id, reason)
);
