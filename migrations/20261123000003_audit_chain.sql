-- The audit log becomes tamper-evident: append-only, and hash-chained.
--
-- Every row carries `hash` = SHA-256 over a canonical, versioned, length-prefixed encoding of its content (every
-- column but `hash`, including `id`, `occurred_at` in microseconds and `prev_hash`), and `prev_hash` = the `hash` of
-- the row before it in id order. Changing a row's content breaks its own hash; rewriting its hash too breaks the
-- next row's link; removing a row leaves an id gap. `modelcopy audit verify` walks the chain and names the first row
-- that breaks it. The encoding is defined once, in Rust (src/audit/chain.rs); `audit_chain_v1` below is its SQL twin,
-- used only to backfill the rows written before this migration, and dropped at the end.
--
-- Rows are chained by store::audit::insert inside the inserting transaction: it takes
-- pg_advisory_xact_lock(4707744067224552264) -- 0x41554449545F4348, ASCII "AUDIT_CH", outside the range of the
-- dispatch leadership keys -- reads the last row, assigns id = last id + 1 and prev_hash = last hash, computes the
-- hash and inserts. The lock is held until commit, so rows commit in id order and ids have no gaps. The id column
-- loses its default so that no insert can bypass that code.
--
-- UPDATE, DELETE and TRUNCATE are refused by triggers, for every role including the service's. Like every ordinary
-- trigger they do not fire with `SET session_replication_role = replica`, which only a superuser may set: a
-- superuser can always change a table, and the chain is what makes that visible.

ALTER TABLE audit_log
    -- The ids of the policies that decided the call (empty while authorization is allow-all).
    ADD COLUMN policy_ids text[] NOT NULL DEFAULT '{}'
        CONSTRAINT audit_log_policy_ids_no_nulls CHECK (array_position(policy_ids, NULL) IS NULL),
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash bytea;

-- One field of the encoding: 0x00 for NULL, or 0x01, the length as 4 bytes big-endian, and the bytes.
CREATE FUNCTION pg_temp.audit_chain_field(value bytea) RETURNS bytea LANGUAGE sql AS $$
    SELECT CASE WHEN value IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(value)) || value END
$$;

-- Encoding v1 of one row (see src/audit/chain.rs, which is the definition).
CREATE FUNCTION pg_temp.audit_chain_v1(r audit_log, previous bytea) RETURNS bytea LANGUAGE sql AS $$
    SELECT pg_temp.audit_chain_field(convert_to('modelcopy.audit_log.v1', 'UTF8'))
        || pg_temp.audit_chain_field(int8send(r.id))
        || pg_temp.audit_chain_field(int8send((extract(epoch FROM r.occurred_at) * 1000000)::bigint))
        || pg_temp.audit_chain_field(convert_to(r.principal, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.authn, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.peer, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.rpc, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.decision, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.reason, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.grpc_code, 'UTF8'))
        || pg_temp.audit_chain_field(convert_to(r.request::text, 'UTF8'))
        || pg_temp.audit_chain_field(r.request_digest)
        || pg_temp.audit_chain_field(uuid_send(r.copy_id))
        || pg_temp.audit_chain_field(
               int4send(cardinality(r.policy_ids))
               || COALESCE((SELECT string_agg(int4send(octet_length(convert_to(p, 'UTF8'))) || convert_to(p, 'UTF8'),
                                              ''::bytea ORDER BY n)
                              FROM unnest(r.policy_ids) WITH ORDINALITY AS ids (p, n)), ''::bytea))
        || pg_temp.audit_chain_field(previous)
$$;

-- Chain the rows written so far, in id order.
DO $$
DECLARE
    rec audit_log;
    previous bytea := NULL;
    digest bytea;
BEGIN
    FOR rec IN SELECT * FROM audit_log ORDER BY id LOOP
        digest := sha256(pg_temp.audit_chain_v1(rec, previous));
        UPDATE audit_log SET prev_hash = previous, hash = digest WHERE id = rec.id;
        previous := digest;
    END LOOP;
END
$$;

DROP FUNCTION pg_temp.audit_chain_v1(audit_log, bytea);
DROP FUNCTION pg_temp.audit_chain_field(bytea);

ALTER TABLE audit_log
    ALTER COLUMN hash SET NOT NULL,
    ALTER COLUMN id DROP DEFAULT,
    ADD CONSTRAINT audit_log_hash_is_sha256 CHECK (octet_length(hash) = 32),
    ADD CONSTRAINT audit_log_prev_hash_is_sha256 CHECK (prev_hash IS NULL OR octet_length(prev_hash) = 32);

-- ListAuditEvents by principal, in chain order.
CREATE INDEX audit_log_principal ON audit_log (principal, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Audit rows are hash-chained evidence; they are never changed or removed.';
END;
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- A copy names the audit row of the request that created it, so that one request can be followed end to end:
-- audit_log -> copy_jobs -> copy_events. Copies created before this migration get the row that created them.
ALTER TABLE copy_jobs ADD COLUMN audit_id bigint REFERENCES audit_log (id);
UPDATE copy_jobs AS j
   SET audit_id = (SELECT min(a.id) FROM audit_log AS a
                    WHERE a.copy_id = j.id AND a.rpc = 'CopyModelVersion' AND a.decision = 'ALLOWED');
