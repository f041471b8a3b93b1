-- Offline first run (`cpctl history` when CoinGecko cannot be reached): the
-- shipped Binance candles stand in for history, moved forward in time so they
-- end at the hour before the load. They are kept apart as source 'sample',
-- and this table says, per coin, what they really are, so the dashboard can
-- say so on every page. A later successful backfill deletes both.
ALTER TABLE price_ticks DROP CONSTRAINT price_ticks_source_check;
ALTER TABLE price_ticks ADD CONSTRAINT price_ticks_source_check
    CHECK (source IN ('simulated', 'replay', 'sample'));

CREATE TABLE sample_history (
    coin_id       text        PRIMARY KEY,
    -- The candles' real open times, first and last.
    original_from timestamptz NOT NULL,
    original_to   timestamptz NOT NULL,
    -- How far they were moved forward: stored instant = real instant + shift.
    shift_secs    bigint      NOT NULL CHECK (shift_secs >= 0),
    candles       integer     NOT NULL CHECK (candles > 0),
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (original_from <= original_to)
);
