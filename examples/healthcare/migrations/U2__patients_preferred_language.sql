-- Undo V2.
ALTER TABLE patients DROP COLUMN preferred_language;
