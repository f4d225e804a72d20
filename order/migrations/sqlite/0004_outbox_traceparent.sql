-- 0004_outbox_traceparent: the W3C traceparent of the span that wrote an
-- outbox row, NULL when it was not traced (see the MySQL migration).
ALTER TABLE outbox ADD COLUMN traceparent TEXT NULL;
