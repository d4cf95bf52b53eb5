-- The triggers that run when copies are inserted, run once per statement instead of once per row.
--
-- Why: the writer inserts a whole group commit's copies in one statement. Per row, each new copy ran two PL/pgSQL
-- triggers, and the queue counter's row was updated once per copy (each update a new version of the same row).
-- Per statement, each destination account's counter moves once by the number of copies queued, and each account
-- queued into is notified once (NOTIFY folds identical payloads within a transaction anyway).
-- The trigger for jobs leaving QUEUED stays per row: the dispatcher changes one job at a time.

DROP TRIGGER copy_jobs_count_queued_insert ON copy_jobs;
DROP TRIGGER copy_jobs_notify_queued ON copy_jobs;
DROP FUNCTION copy_jobs_notify_queued();

CREATE FUNCTION copy_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_queue_depth AS d (account, queued)
        SELECT destination_account, count(*) FROM inserted WHERE state = 'QUEUED' GROUP BY destination_account
        ON CONFLICT (account) DO UPDATE SET queued = d.queued + EXCLUDED.queued;
    PERFORM pg_notify('modelcopy_jobs_queued', account)
       FROM (SELECT DISTINCT destination_account AS account FROM inserted ORDER BY 1) AS queued_into;
    RETURN NULL;
END;
$$;

CREATE TRIGGER copy_jobs_inserted AFTER INSERT ON copy_jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION copy_jobs_inserted();
