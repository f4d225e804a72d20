-- 0001_notifier: contacts and the notification ledger (SQLite).

CREATE TABLE contacts (
    user_id    TEXT     NOT NULL PRIMARY KEY,
    email      TEXT     NOT NULL DEFAULT '',
    phone      TEXT     NOT NULL DEFAULT '',
    updated_at DATETIME NOT NULL
);

CREATE TABLE notifications (
    id          INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT     NOT NULL,
    channel     TEXT     NOT NULL,
    event_type  TEXT     NOT NULL,
    order_id    TEXT     NOT NULL,
    user_id     TEXT     NOT NULL,
    recipient   TEXT     NOT NULL,
    payload     TEXT     NOT NULL,
    status      TEXT     NOT NULL CHECK (status IN ('pending', 'sent', 'dead_lettered')),
    attempts    INTEGER  NOT NULL DEFAULT 0,
    version     INTEGER  NOT NULL DEFAULT 0,
    due_at_ms   INTEGER  NOT NULL,
    last_error  TEXT     NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL,
    sent_at     DATETIME
);

CREATE UNIQUE INDEX uk_notifications_event_channel ON notifications (event_id, channel);
CREATE INDEX idx_notifications_status_due ON notifications (status, due_at_ms);
CREATE INDEX idx_notifications_order ON notifications (order_id);
