-- 0001_notifier: contacts and the notification ledger (MySQL 8 / MariaDB 10.11).

-- Where mail and SMS go. The demo login fills it; a team with a user
-- service replaces the contacts.Source behind it instead.
CREATE TABLE contacts (
    user_id    VARCHAR(64)  NOT NULL PRIMARY KEY,
    email      VARCHAR(254) NOT NULL DEFAULT '',
    phone      VARCHAR(32)  NOT NULL DEFAULT '',
    updated_at DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per (event, channel): the dedupe key, the retry schedule and the
-- dead-letter record in one place. due_at_ms is Unix milliseconds, which
-- compares the same on every backend.
CREATE TABLE notifications (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id    VARCHAR(64)   NOT NULL,
    channel     VARCHAR(16)   NOT NULL,
    event_type  VARCHAR(32)   NOT NULL,
    order_id    VARCHAR(64)   NOT NULL,
    user_id     VARCHAR(64)   NOT NULL,
    recipient   VARCHAR(254)  NOT NULL,
    payload     TEXT          NOT NULL,
    status      VARCHAR(16)   NOT NULL,
    attempts    INT           NOT NULL DEFAULT 0,
    version     BIGINT        NOT NULL DEFAULT 0,
    due_at_ms   BIGINT        NOT NULL,
    last_error  VARCHAR(1000) NOT NULL DEFAULT '',
    created_at  DATETIME(6)   NOT NULL,
    updated_at  DATETIME(6)   NOT NULL,
    sent_at     DATETIME(6)   NULL,
    CONSTRAINT chk_notifications_status CHECK (status IN ('pending', 'sent', 'dead_lettered')),
    UNIQUE KEY uk_notifications_event_channel (event_id, channel),
    KEY idx_notifications_status_due (status, due_at_ms),
    KEY idx_notifications_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
