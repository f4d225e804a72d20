-- 0002_lifecycle: the transactional outbox and the consumers' dedupe table
-- (see the MySQL migration for what they are for).
CREATE TABLE outbox (
    id           INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT     NOT NULL UNIQUE,
    topic        TEXT     NOT NULL,
    msg_key      TEXT     NOT NULL,
    payload      BLOB     NOT NULL,
    deliver_at   DATETIME NULL,
    created_at   DATETIME NOT NULL,
    published_at DATETIME NULL
);
CREATE INDEX idx_outbox_unpublished ON outbox (published_at, id);

CREATE TABLE consumed_events (
    consumer    TEXT     NOT NULL,
    event_id    TEXT     NOT NULL,
    consumed_at DATETIME NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX idx_consumed_events_at ON consumed_events (consumed_at);
