-- A watcher's snapshot reads the live copies a page at a time in creation order (src/store/jobs/watch.rs,
-- live_page). The live ones are few beside all the copies ever made: a partial index keeps that read to them.
CREATE INDEX copy_jobs_live ON copy_jobs (created_at, id) WHERE state IN ('QUEUED', 'SUBMITTING', 'COPYING');
