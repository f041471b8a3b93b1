-- Live market data (issue #14): bars of real trades from Binance and Coinbase,
-- published by the websocket feed (`cpctl feed`) or, on AWS, by the feed
-- function from the exchanges' closed 1-minute candles.

ALTER TABLE price_ticks DROP CONSTRAINT price_ticks_source_check;
ALTER TABLE price_ticks ADD CONSTRAINT price_ticks_source_check
    CHECK (source IN ('simulated', 'replay', 'sample', 'binance', 'coinbase'));

-- What a bar of trades adds to its last price: both or neither.
ALTER TABLE price_ticks ADD COLUMN vwap double precision CHECK (vwap > 0);
ALTER TABLE price_ticks ADD COLUMN trade_count integer CHECK (trade_count > 0);
ALTER TABLE price_ticks ADD CONSTRAINT price_ticks_bar_check CHECK ((vwap IS NULL) = (trade_count IS NULL));

-- A 5-second bar and a 1-minute candle of one exchange can end at the same
-- instant: the interval is part of a tick's identity, so neither absorbs the other.
ALTER TABLE price_ticks DROP CONSTRAINT price_ticks_pkey;
ALTER TABLE price_ticks ADD PRIMARY KEY (coin_id, event_time, source, interval_secs);

-- How far the feed function has published each exchange's candles of a coin:
-- the end of the last closed minute it fetched. Advanced only after Kafka
-- acknowledged the candles, so an invocation publishes nothing a previous
-- one published (a crash between the two re-publishes the same keys, which
-- the consumer's idempotent insert absorbs).
CREATE TABLE feed_cursors (
    exchange    text        NOT NULL CHECK (exchange IN ('binance', 'coinbase')),
    coin_id     text        NOT NULL,
    fetched_to  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, coin_id)
);
