-- The pace of preflight calls per AWS account, shared by every replica (src/store/pace.rs): the theoretical
-- arrival time of the account's next call, GCRA-style. One row per account, updated once per preflight call.
CREATE TABLE preflight_pace (
    account text        PRIMARY KEY,
    tat     timestamptz NOT NULL
);
