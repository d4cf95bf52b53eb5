-- Which call each audit row records, so that a call is on record once, whatever happens to its commit.
--
-- A call's row is written either with what it did (a new copy, a cancellation: in that transaction) or after it
-- (everything else). When the transaction that carries the row fails in a way that leaves its outcome unknown (the
-- connection lost during COMMIT, a timeout), the call is answered UNAVAILABLE and the audit layer writes that
-- answer's row; if the first commit did land, the call had two rows. Each call now carries an id of its own, and
-- the group commit stores a call's id here with its row, and writes no second row for an id already here (it reads
-- them under the chain's lock). Not a column of `audit_log`: every one of those is in the hash chain's encoding.
CREATE TABLE audit_calls (
    call_id  uuid   PRIMARY KEY,
    audit_id bigint NOT NULL REFERENCES audit_log (id)
);
