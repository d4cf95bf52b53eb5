-- How far the history of copy events has been pruned (src/store/events.rs, `prune`): every event numbered at or
-- below `through_seq` may be gone. Raised before any of them is deleted, so that a watcher that read a page of events
-- and then finds the mark still below where it read knows the page was whole; a resume from below it is refused
-- (OUT_OF_RANGE) rather than served with a gap.
CREATE TABLE copy_events_pruned (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    through_seq bigint NOT NULL DEFAULT 0 CHECK (through_seq >= 0)
);
INSERT INTO copy_events_pruned DEFAULT VALUES;

-- Pruning finds the newest event older than the retention; events are appended in time order, so a BRIN index on
-- their time finds the old end of the table without reading the rest (and costs next to nothing to keep).
CREATE INDEX copy_events_occurred_brin ON copy_events USING brin (occurred_at);
