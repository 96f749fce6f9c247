-- Directories the write side keeps to route charger messages to aggregates. They are not read models: only the
-- write side writes them, synchronously, before it appends the events that use them, and a row never changes.

-- OCPP 1.6 StartTransaction.conf carries a transactionId the CSMS assigns (an integer).
CREATE SEQUENCE ocpp16_transaction_id_seq;

-- Which session a charger's transaction id belongs to. `start_key` fingerprints a 1.6 StartTransaction
-- (connector, idTag, timestamp, meterStart) so a charger replaying it gets the same transactionId back.
CREATE TABLE charger_transactions (
    charger_id      uuid        NOT NULL,
    transaction_id  text        NOT NULL,
    session_id      uuid        NOT NULL,
    start_key       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charger_id, transaction_id),
    CONSTRAINT charger_transactions_start_key UNIQUE (charger_id, start_key)
);

-- Which driver an id token (RFID card, app token) belongs to; tokens are unique platform-wide and stored
-- upper-cased because OCPP compares them case-insensitively. Blocking lives on the Driver aggregate.
CREATE TABLE id_token_owners (
    token       text        PRIMARY KEY,
    driver_id   uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
