-- 0005_activity_admission: 'open' (a race, the default) or 'queue' (a
-- waiting room); see the MySQL migration.
ALTER TABLE activities ADD COLUMN admission TEXT NOT NULL DEFAULT 'open';
