-- 0001_init: activities and orders (SQLite). DATETIME columns hold UTC text
-- written by the Go driver; the declared type makes it read back as time.

CREATE TABLE activities (
    id                  INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL,
    stock               INTEGER NOT NULL CHECK (stock >= 0),
    available           INTEGER NOT NULL,
    price_cents         INTEGER NOT NULL CHECK (price_cents >= 0),
    starts_at           DATETIME NOT NULL,
    ends_at             DATETIME NOT NULL,
    pay_timeout_seconds INTEGER NOT NULL CHECK (pay_timeout_seconds > 0),
    version             INTEGER NOT NULL DEFAULT 0,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    CONSTRAINT chk_activities_available CHECK (available >= 0 AND available <= stock)
);

CREATE TABLE orders (
    id           TEXT    NOT NULL PRIMARY KEY,
    activity_id  INTEGER NOT NULL REFERENCES activities (id),
    user_id      TEXT    NOT NULL,
    request_id   TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL CHECK (state IN ('created', 'paid', 'cancelled')),
    price_cents  INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 0,
    pay_deadline DATETIME NOT NULL,
    trace_id     TEXT    NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL
);

-- One live (created or paid) order per user per activity: a cancelled order
-- does not stop its user from buying the returned unit.
CREATE UNIQUE INDEX uk_orders_activity_user ON orders (activity_id, user_id) WHERE state IN ('created', 'paid');
CREATE INDEX idx_orders_activity_user_all ON orders (activity_id, user_id);
CREATE INDEX idx_orders_activity_state ON orders (activity_id, state);
CREATE INDEX idx_orders_state_deadline ON orders (state, pay_deadline);
