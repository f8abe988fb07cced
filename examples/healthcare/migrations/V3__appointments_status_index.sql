-- pgops: no-transaction
-- V3: the "today's open appointments" query filters on status and start time.
-- Built CONCURRENTLY (outside a transaction), so writes to appointments go on.
CREATE INDEX CONCURRENTLY IF NOT EXISTS appointments_status_starts_at_idx ON appointments (status, starts_at);
