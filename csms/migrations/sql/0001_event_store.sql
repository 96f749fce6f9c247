-- The event store: one append-only log of domain events, the only source of truth for domain facts.
--
-- `position` is the global commit order. It is assigned by the appender as max(position) + 1 while it holds
-- LOCK TABLE events IN EXCLUSIVE MODE until commit, so positions are gap-free and a reader tailing by position
-- never sees position n + 1 before position n (a sequence alone would let a slow transaction commit a lower
-- number after a higher one was already read).
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    stream_id       uuid        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    topic           text        NOT NULL,
    schema_version  smallint    NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- Optimistic concurrency: two writers that loaded the same version cannot both append.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- Position of each consumer (projector, process manager) of the log. A Postgres read model updates its rows
-- and its row here in one transaction, which makes its processing exactly-once.
CREATE TABLE tracking (
    consumer    text        PRIMARY KEY,
    position    bigint      NOT NULL CHECK (position >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
