-- History from CoinGecko /coins/{id}/market_chart/range (the backfill).
CREATE TABLE market_history (
    coin_id      text             NOT NULL,
    vs_currency  text             NOT NULL,
    ts           timestamptz      NOT NULL,
    price        double precision,
    market_cap   double precision,
    total_volume double precision,
    ingested_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (coin_id, vs_currency, ts)
);

CREATE INDEX market_history_ingested ON market_history (ingested_at);

-- Chunks of history already stored, so an interrupted backfill resumes where it
-- stopped. A chunk row is written in the same transaction as its points.
CREATE TABLE backfill_chunks (
    coin_id      text        NOT NULL,
    vs_currency  text        NOT NULL,
    range_start  timestamptz NOT NULL,
    range_end    timestamptz NOT NULL,
    points       integer     NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (coin_id, vs_currency, range_start, range_end),
    CHECK (range_start < range_end)
);
