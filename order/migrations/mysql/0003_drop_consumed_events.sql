-- 0003_drop_consumed_events: consumed_events (0002) never had a consumer.
-- The notifier, the one consumer of order events, dedupes by its own ledger
-- (the UNIQUE (event_id, channel) key of its notifications table), so the
-- table is dropped rather than kept empty.
DROP TABLE IF EXISTS consumed_events;
