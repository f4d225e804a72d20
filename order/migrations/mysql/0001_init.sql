-- 0001_init: activities and orders (MySQL 8 / MariaDB 10.11).
-- utf8mb4_bin: ids compare byte for byte, as on SQLite, so "Alice" and
-- "alice" are two users. DATETIME(6) holds UTC with microseconds.

CREATE TABLE activities (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    name                VARCHAR(200) NOT NULL,
    stock               BIGINT       NOT NULL,
    available           BIGINT       NOT NULL,
    price_cents         BIGINT       NOT NULL,
    starts_at           DATETIME(6)  NOT NULL,
    ends_at             DATETIME(6)  NOT NULL,
    pay_timeout_seconds BIGINT       NOT NULL,
    version             BIGINT       NOT NULL DEFAULT 0,
    created_at          DATETIME(6)  NOT NULL,
    updated_at          DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT chk_activities_stock CHECK (stock >= 0),
    CONSTRAINT chk_activities_available CHECK (available >= 0 AND available <= stock),
    CONSTRAINT chk_activities_price CHECK (price_cents >= 0),
    CONSTRAINT chk_activities_pay_timeout CHECK (pay_timeout_seconds > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE orders (
    id           VARCHAR(64) NOT NULL,
    activity_id  BIGINT      NOT NULL,
    user_id      VARCHAR(64) NOT NULL,
    request_id   VARCHAR(64) NOT NULL DEFAULT '',
    state        VARCHAR(16) NOT NULL,
    price_cents  BIGINT      NOT NULL,
    version      BIGINT      NOT NULL DEFAULT 0,
    pay_deadline DATETIME(6) NOT NULL,
    trace_id     VARCHAR(64) NOT NULL DEFAULT '',
    created_at   DATETIME(6) NOT NULL,
    updated_at   DATETIME(6) NOT NULL,
    -- The user of a live (created or paid) order, NULL once cancelled: the
    -- unique key below is then "one live order per user per activity", so a
    -- cancelled order does not stop its user from buying the returned unit.
    -- MySQL has no partial indexes; NULLs never clash in a UNIQUE key.
    live_user_id VARCHAR(64) GENERATED ALWAYS AS (CASE WHEN state IN ('created', 'paid') THEN user_id END) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY uk_orders_activity_user (activity_id, live_user_id),
    KEY idx_orders_activity_user_all (activity_id, user_id),
    KEY idx_orders_activity_state (activity_id, state),
    KEY idx_orders_state_deadline (state, pay_deadline),
    CONSTRAINT fk_orders_activity FOREIGN KEY (activity_id) REFERENCES activities (id),
    CONSTRAINT chk_orders_state CHECK (state IN ('created', 'paid', 'cancelled'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
