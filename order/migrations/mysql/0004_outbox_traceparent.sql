-- 0004_outbox_traceparent: the trace an outbox row was written in.
--
-- A row's message is published later by the relay, in a round of its own;
-- the W3C traceparent of the span that wrote the row (the order's consumer
-- span, the cancel, the payment request) lets the publish continue that
-- trace, so one order is one trace across the outbox. NULL when the writer
-- was not traced. Version 00 of the header is 55 characters; the column
-- leaves room for a later version's extra fields.
ALTER TABLE outbox ADD COLUMN traceparent VARCHAR(128) NULL;
