-- Answers to POST requests that carried an Idempotency-Key, so a client retrying after a timeout gets the first
-- answer instead of a second effect. A row is claimed (status NULL) before the request runs and completed after.
CREATE TABLE idempotency_keys (
    caller          text        NOT NULL,   -- the account (or client address for anonymous calls) that sent it
    key             text        NOT NULL,
    request_hash    text        NOT NULL,   -- method, path and body: the same key with another body is refused
    status          smallint,
    headers         jsonb,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
