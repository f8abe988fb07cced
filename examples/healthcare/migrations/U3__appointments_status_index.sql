-- pgops: no-transaction
-- Undo V3.
DROP INDEX CONCURRENTLY IF EXISTS appointments_status_starts_at_idx;
