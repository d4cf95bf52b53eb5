-- Each destination account's queue depth, kept as a counter so that admitting a copy reads one row instead of
-- counting the account's queued jobs (which grows with the queue). Triggers keep it exact: a job inserted as QUEUED
-- adds one, a job leaving QUEUED takes one away. Only those two changes touch the row, so the dispatcher's other
-- transitions never wait on it.

CREATE TABLE account_queue_depth (
    account text   PRIMARY KEY,
    queued  bigint NOT NULL CHECK (queued >= 0)
);

INSERT INTO account_queue_depth (account, queued)
    SELECT destination_account, count(*) FROM copy_jobs WHERE state = 'QUEUED' GROUP BY destination_account;

CREATE FUNCTION copy_jobs_count_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO account_queue_depth AS d (account, queued) VALUES (NEW.destination_account, 1)
            ON CONFLICT (account) DO UPDATE SET queued = d.queued + 1;
    ELSE
        UPDATE account_queue_depth SET queued = queued - 1 WHERE account = OLD.destination_account;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER copy_jobs_count_queued_insert AFTER INSERT ON copy_jobs
    FOR EACH ROW WHEN (NEW.state = 'QUEUED') EXECUTE FUNCTION copy_jobs_count_queued();
CREATE TRIGGER copy_jobs_count_queued_leave AFTER UPDATE OF state ON copy_jobs
    FOR EACH ROW WHEN (OLD.state = 'QUEUED' AND NEW.state <> 'QUEUED') EXECUTE FUNCTION copy_jobs_count_queued();
