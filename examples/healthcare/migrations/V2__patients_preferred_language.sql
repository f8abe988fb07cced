-- V2: a patient's preferred language, for reminders. Nullable and without a
-- default, so adding it changes only the catalog (no table rewrite, a brief lock).
ALTER TABLE patients ADD COLUMN preferred_language text;
