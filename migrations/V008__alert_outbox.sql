-- Alerts that reach people (issue #15): the rule an alert belongs to, and an
-- outbox of notifications, one row per (alert, channel).

-- Several rules may alert on the same coin, hour and window (1 h ±5 % and 1 h
-- ±10 %): the rule is part of an alert's key. Alerts written before rules
-- existed came from the one rule there was, named 'default' in alerts.toml.
ALTER TABLE price_alerts ADD COLUMN rule text;
UPDATE price_alerts SET rule = 'default';
ALTER TABLE price_alerts ALTER COLUMN rule SET NOT NULL;
ALTER TABLE price_alerts DROP CONSTRAINT price_alerts_pkey;
ALTER TABLE price_alerts ADD PRIMARY KEY (coin_id, at, window_secs, rule);

-- The transform inserts a row per new alert and channel in the transaction
-- that writes the alert, and never a second one for the same key: price_alerts
-- is rewritten per recomputed day, this table is not. The alert's figures are
-- copied here, as they were when it was first seen, so a message never depends
-- on a row a later run may replace. The notify step moves rows from 'pending'
-- to 'sent' (only after the channel accepted the message), 'suppressed' (within
-- the cool-down of an earlier message of the same coin and rule) or 'failed'
-- (after ALERT_DELIVERY_ATTEMPTS tries, or an answer no retry can change).
-- 'historical': older than ALERT_NOTIFY_MAX_AGE when first seen (a backfill, a
-- replay, a rebuild), recorded and never sent.
CREATE TABLE alert_outbox (
    coin_id         text             NOT NULL,
    at              timestamptz      NOT NULL,
    window_secs     integer          NOT NULL,
    rule            text             NOT NULL,
    -- 'sns' or 'webhook:NAME'
    channel         text             NOT NULL,
    state           text             NOT NULL
        CHECK (state IN ('pending', 'sent', 'suppressed', 'failed', 'historical')),
    change_pct      double precision NOT NULL,
    direction       text             NOT NULL CHECK (direction IN ('up', 'down')),
    price_before    double precision NOT NULL,
    price_after     double precision NOT NULL,
    -- The rule's cool-down when the alert was first seen (alerts.toml).
    cooldown_secs   integer          NOT NULL CHECK (cooldown_secs >= 0),
    -- The transform run that first saw the alert.
    run_id          uuid             NOT NULL,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    -- Delivery tries so far, and the last one's error (kept after a later success).
    attempts        integer          NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    -- A channel asked to wait (HTTP 429 Retry-After beyond what one run waits).
    not_before      timestamptz,
    sent_at         timestamptz,
    -- How many alerts of the same coin and rule this message reports as suppressed.
    suppressed      integer CHECK (suppressed >= 0),
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (coin_id, at, window_secs, rule, channel),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);

-- The notify step's work list.
CREATE INDEX alert_outbox_pending ON alert_outbox (channel, coin_id, rule, at) WHERE state = 'pending';
-- The cool-down's question: the last message sent for a channel, coin and rule.
CREATE INDEX alert_outbox_sent ON alert_outbox (channel, coin_id, rule, at) WHERE state = 'sent';
