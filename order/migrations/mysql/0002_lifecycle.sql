-- 0002_lifecycle: the transactional outbox and the consumers' dedupe table.
--
-- outbox: every row is written in the transaction that changes an order
-- (an order event, or the delayed pay-deadline message), and relayed to
-- its topic afterwards; published_at stays NULL until then, so a relay
-- that restarts resumes where the last one stopped.
CREATE TABLE outbox (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    event_id     VARCHAR(100) NOT NULL,
    topic        VARCHAR(100) NOT NULL,
    msg_key      VARCHAR(64)  NOT NULL,
    payload      BLOB         NOT NULL,
    deliver_at   DATETIME(6)  NULL,
    created_at   DATETIME(6)  NOT NULL,
    published_at DATETIME(6)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_outbox_event (event_id),
    KEY idx_outbox_unpublished (published_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- consumed_events: (consumer, event_id) a consumer has already handled, so
-- an event the relay published twice is acted on once.
CREATE TABLE consumed_events (
    consumer    VARCHAR(64)  NOT NULL,
    event_id    VARCHAR(100) NOT NULL,
    consumed_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (consumer, event_id),
    KEY idx_consumed_events_at (consumed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
