-- The transactional outbox table, with the column names Debezium's
-- outbox EventRouter SMT expects by default. timestamp and headers are
-- optional (Config.Timestamp, Config.Headers). Run it once per database.
CREATE TABLE IF NOT EXISTS outbox (
    id            uuid        PRIMARY KEY,
    aggregatetype text        NOT NULL,
    aggregateid   text        NOT NULL,
    type          text        NOT NULL,
    payload       jsonb,
    "timestamp"   timestamptz NOT NULL DEFAULT now(),
    headers       jsonb
);
-- For the polling relay and for purging kept rows: oldest first.
CREATE INDEX IF NOT EXISTS outbox_timestamp ON outbox ("timestamp");
