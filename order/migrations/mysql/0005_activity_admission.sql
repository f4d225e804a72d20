-- 0005_activity_admission: how buyers reach an activity's sale. 'open': a
-- race, whoever's buy reaches Redis first (the default, as before);
-- 'queue': through a waiting room that admits people in a drawn order
-- (the gateway's sale/waitroom).
ALTER TABLE activities ADD COLUMN admission VARCHAR(8) NOT NULL DEFAULT 'open';
