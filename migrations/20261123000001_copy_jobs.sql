-- Copy jobs, their state history, and the audit log.
--
-- A copy job is written together with the audit record of the request that created it, in one transaction
-- (see src/store/jobs.rs). Every state change of a job is one row of copy_events, whose `seq` only grows:
-- WatchCopy streams these rows, and a later version lets a watcher resume from a sequence number.

CREATE TABLE copy_jobs (
    id                          uuid PRIMARY KEY,
    principal                   text        NOT NULL,
    idempotency_token           text,
    request_digest              bytea       NOT NULL,

    source_project_arn          text        NOT NULL,
    source_project_version_arn  text        NOT NULL,
    destination_project_arn     text        NOT NULL,
    version_name                text        NOT NULL,
    s3_bucket                   text        NOT NULL,
    s3_key_prefix               text        NOT NULL DEFAULT '',
    tags                        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    kms_key_id                  text,
    source_account              text        NOT NULL,
    destination_account         text        NOT NULL,
    region                      text        NOT NULL,

    state                       text        NOT NULL
        CHECK (state IN ('QUEUED', 'SUBMITTING', 'COPYING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    rekognition_status          text,
    rekognition_status_message  text,
    destination_version_arn     text,
    error_code                  text,
    error_message               text,

    -- Dispatch bookkeeping: when the job may next be worked on, by whom, and until when that claim holds.
    attempts                    integer     NOT NULL DEFAULT 0,
    next_attempt_at             timestamptz NOT NULL DEFAULT now(),
    lease_owner                 text,
    lease_expires_at            timestamptz,

    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    submitted_at                timestamptz,
    completed_at                timestamptz,

    -- A token is the caller's: two principals may use the same string.
    CONSTRAINT copy_jobs_idempotency UNIQUE (principal, idempotency_token)
);

-- The dispatcher's scan: live jobs by due time.
CREATE INDEX copy_jobs_due ON copy_jobs (next_attempt_at)
    WHERE state IN ('QUEUED', 'SUBMITTING', 'COPYING');
-- ListCopies: newest first, keyset paging on (created_at, id).
CREATE INDEX copy_jobs_created ON copy_jobs (created_at DESC, id DESC);
CREATE INDEX copy_jobs_destination ON copy_jobs (destination_account, created_at DESC);
CREATE INDEX copy_jobs_source ON copy_jobs (source_account, created_at DESC);

CREATE TABLE copy_events (
    seq                         bigserial   PRIMARY KEY,
    copy_id                     uuid        NOT NULL REFERENCES copy_jobs (id),
    from_state                  text,
    to_state                    text        NOT NULL,
    -- The job's changing fields right after this event, so an event renders the copy as it was then.
    rekognition_status          text,
    rekognition_status_message  text,
    destination_version_arn     text,
    error_code                  text,
    error_message               text,
    detail                      text,
    occurred_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX copy_events_copy ON copy_events (copy_id, seq);

-- Watchers in every replica learn of new events through NOTIFY, delivered at commit and in commit order.
-- The payload is small on purpose (NOTIFY payloads are capped at 8000 bytes): listeners read the row.
CREATE FUNCTION copy_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('modelcopy_copy_events', NEW.seq::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER copy_events_notify AFTER INSERT ON copy_events
    FOR EACH ROW EXECUTE FUNCTION copy_events_notify();

-- New queued work wakes the dispatchers without waiting for their next poll.
CREATE FUNCTION copy_jobs_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('modelcopy_jobs_queued', NEW.destination_account);
    RETURN NULL;
END;
$$;
CREATE TRIGGER copy_jobs_notify_queued AFTER INSERT ON copy_jobs
    FOR EACH ROW EXECUTE FUNCTION copy_jobs_notify_queued();

CREATE TABLE audit_log (
    id                          bigserial   PRIMARY KEY,
    occurred_at                 timestamptz NOT NULL DEFAULT now(),
    principal                   text,
    -- How the principal was established ("dev-metadata" while authentication is a development stand-in).
    authn                       text        NOT NULL,
    peer                        text,
    rpc                         text        NOT NULL,
    decision                    text        NOT NULL
        CHECK (decision IN ('ALLOWED', 'DENIED', 'INVALID', 'FAILED')),
    reason                      text,
    grpc_code                   text        NOT NULL,
    request                     jsonb,
    request_digest              bytea,
    copy_id                     uuid
);
CREATE INDEX audit_log_time ON audit_log (occurred_at);
CREATE INDEX audit_log_copy ON audit_log (copy_id) WHERE copy_id IS NOT NULL;
