-- Dispatch works one destination account at a time (one leader per account, see src/dispatch/leadership.rs):
-- its queries look for an account's jobs by state and due time, and for the oldest queued job of each principal.
CREATE INDEX copy_jobs_account_due ON copy_jobs (destination_account, state, next_attempt_at)
    WHERE state IN ('QUEUED', 'SUBMITTING', 'COPYING');
CREATE INDEX copy_jobs_account_queue ON copy_jobs (destination_account, principal, created_at, id)
    WHERE state = 'QUEUED';
