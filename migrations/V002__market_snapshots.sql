-- Batch snapshots from CoinGecko /coins/markets, one row per coin, currency and
-- CoinGecko update time. Numbers are nullable because CoinGecko sends nulls;
-- cleaning is the transform's job, this table keeps what was observed.
CREATE TABLE market_snapshots (
    coin_id                     text             NOT NULL,
    vs_currency                 text             NOT NULL,
    observed_at                 timestamptz      NOT NULL,
    symbol                      text             NOT NULL,
    name                        text             NOT NULL,
    current_price               double precision,
    market_cap                  double precision,
    market_cap_rank             integer,
    fully_diluted_valuation     double precision,
    total_volume                double precision,
    high_24h                    double precision,
    low_24h                     double precision,
    price_change_24h            double precision,
    price_change_percentage_24h double precision,
    circulating_supply          double precision,
    total_supply                double precision,
    max_supply                  double precision,
    ingested_at                 timestamptz      NOT NULL DEFAULT now(),
    run_id                      uuid             REFERENCES pipeline_runs (run_id),
    PRIMARY KEY (coin_id, vs_currency, observed_at)
);

-- Transforms read "what arrived since the last run".
CREATE INDEX market_snapshots_ingested ON market_snapshots (ingested_at);
