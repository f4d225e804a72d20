-- 0003_drop_consumed_events: consumed_events had no consumer (see the MySQL
-- migration); dropping the table drops its index.
DROP TABLE IF EXISTS consumed_events;
