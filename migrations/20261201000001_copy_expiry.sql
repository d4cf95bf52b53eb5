-- A copy's lifecycle after it succeeded: `delete_after` on the request, the time its version is deleted, and what
-- Rekognition answered when it refused to (issue 13). See src/dispatch/expiry.rs.

ALTER TABLE copy_jobs
    -- Whole seconds, as requested; NULL = kept.
    ADD COLUMN delete_after_secs    bigint CHECK (delete_after_secs > 0),
    -- completed_at + delete_after, set by the transition to SUCCEEDED.
    ADD COLUMN expires_at           timestamptz,
    -- The last refusal of DeleteProjectVersion; cleared when the copy expires.
    ADD COLUMN expiry_error_code    text,
    ADD COLUMN expiry_error_message text;

-- The same changing fields in each event, so an event renders the copy as it was right after it.
ALTER TABLE copy_events
    ADD COLUMN expiry_error_code    text,
    ADD COLUMN expiry_error_message text;

ALTER TABLE copy_jobs DROP CONSTRAINT copy_jobs_state_check;
ALTER TABLE copy_jobs ADD CONSTRAINT copy_jobs_state_check
    CHECK (state IN ('QUEUED', 'SUBMITTING', 'COPYING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'));

-- The expiry scan of an account's dispatcher: succeeded copies that will be deleted, by when. Few beside all
-- copies (only those asked to expire, and only until they do).
CREATE INDEX copy_jobs_expiring ON copy_jobs (destination_account, expires_at)
    WHERE state = 'SUCCEEDED' AND expires_at IS NOT NULL;
