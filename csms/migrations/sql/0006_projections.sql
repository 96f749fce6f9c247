-- The registry of projections: which generation of each read model serves reads, and who is applying events.
--
-- A projector's read model lives in a numbered generation (tables `<name>__g<n>`, or Redis keys under
-- `csms:rm:<name>:g<n>:`). A rebuild fills a fresh generation from position 0 while the current one keeps
-- serving, then swaps it in. For Postgres read models `generation` here is the truth and the stable view names
-- point at it; Redis read models keep their active generation in Redis, next to their data and position.
CREATE TABLE projections (
    name            text        PRIMARY KEY,
    generation      integer     NOT NULL DEFAULT 1 CHECK (generation > 0),
    rebuilding      integer,                 -- the generation a rebuild is filling, if one runs
    holder          text,                    -- the instance applying events (host:pid), while it holds the lock
    heartbeat_at    timestamptz,             -- when that instance last said it was alive
    updated_at      timestamptz NOT NULL DEFAULT now()
);
