-- Rollouts: one source version copied to many destinations in one request (issue 13). A rollout is its request;
-- its state is read from its copies' (src/store/rollouts.rs), so it never disagrees with them.

CREATE TABLE rollouts (
    id                          uuid        PRIMARY KEY,
    principal                   text        NOT NULL,
    idempotency_token           text,
    -- SHA-256 over the rollout's canonical parameters (src/domain/rollout_request.rs): a reused token is told
    -- apart from a retry.
    request_digest              bytea       NOT NULL,
    source_project_arn          text        NOT NULL,
    source_project_version_arn  text        NOT NULL,
    delete_after_secs           bigint      CHECK (delete_after_secs > 0),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    cancelled_at                timestamptz,
    -- The audit row of the request that created it.
    audit_id                    bigint      NOT NULL,
    CONSTRAINT rollouts_idempotency UNIQUE (principal, idempotency_token)
);
-- ListRollouts: newest first, keyset paging on (created_at, id).
CREATE INDEX rollouts_created ON rollouts (created_at DESC, id DESC);

ALTER TABLE copy_jobs
    -- Deferred: a rollout is inserted after its copies, once its audit row (written with them) has its id.
    ADD COLUMN rollout_id    uuid REFERENCES rollouts (id) DEFERRABLE INITIALLY DEFERRED,
    -- The copy's place among its rollout's destinations (0-based).
    ADD COLUMN rollout_index integer;
CREATE INDEX copy_jobs_rollout ON copy_jobs (rollout_id, rollout_index) WHERE rollout_id IS NOT NULL;
