-- Accounts and refresh tokens: credentials, not domain facts. They are infrastructure like a charger's password
-- hash: written by the auth service only, never replayed, never projected. A driver's account points at its
-- Driver aggregate, an operator's at its Company.

-- `email` is stored lower-cased by the application (one normalisation, in Python), hence a plain unique index.
CREATE TABLE accounts (
    id             uuid        PRIMARY KEY,
    email          text        NOT NULL UNIQUE,
    password_hash  text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('driver', 'operator', 'admin')),
    company_id     uuid,
    driver_id      uuid        UNIQUE,
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_operator_has_company CHECK ((role = 'operator') = (company_id IS NOT NULL)),
    CONSTRAINT accounts_driver_has_driver CHECK ((role = 'driver') = (driver_id IS NOT NULL))
);

CREATE INDEX accounts_company_id ON accounts (company_id) WHERE company_id IS NOT NULL;

-- Only a SHA-256 of each token is kept. A login starts a family; each refresh spends one token (replaced_by)
-- and adds the next; reuse of a spent token revokes the whole family. `replaced_by` has no ON DELETE action on
-- purpose: a spent token must never turn unspent because its successor was deleted first.
CREATE TABLE refresh_tokens (
    id           uuid        PRIMARY KEY,
    account_id   uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    family_id    uuid        NOT NULL,
    token_hash   bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    replaced_by  uuid        REFERENCES refresh_tokens (id)
);

CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_account_id ON refresh_tokens (account_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
