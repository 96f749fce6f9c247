-- Meter values that reached the CSMS before the start of their transaction (a charger replaying its offline
-- queue out of order). They are kept here, durably, and recorded on the session as soon as it starts.
CREATE TABLE early_meter_values (
    id              bigserial   PRIMARY KEY,
    charger_id      uuid        NOT NULL,
    transaction_id  text        NOT NULL,
    readings        jsonb       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX early_meter_values_transaction ON early_meter_values (charger_id, transaction_id);
