-- The audit archive: every envelope sent to and received from ИЭМК, compressed (zlib), with what identifies it.
-- Rows outlive the ledger's MessageID (it changes per resend round), so each keeps its ledger id where known.
-- Kept for IEMK_AUDIT_RETENTION_DAYS, then purged.
CREATE TABLE IF NOT EXISTS iemk.audit_exchange (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    direction       text NOT NULL CHECK (direction IN ('out', 'in')),
    kind            text NOT NULL CHECK (kind IN ('request', 'answer', 'reply')),
    service         text,                 -- repository, registry, pix, pdq, callback
    action          text,                 -- wsa:Action
    message_id      text,                 -- wsa:MessageID of this envelope
    relates_to      text,                 -- wsa:RelatesTo (answers and replies)
    ledger_id       bigint,               -- no foreign key: the archive must not stop a ledger change
    mo_oid          text,
    http_status     int,                  -- the answer's HTTP status (NULL for requests and asynchronous replies)
    raw_size        int NOT NULL,
    stored_size     int NOT NULL,
    sha256          text NOT NULL,        -- of the raw bytes, hex
    body            bytea NOT NULL        -- zlib of the raw bytes
);
CREATE INDEX IF NOT EXISTS audit_exchange_ledger_idx ON iemk.audit_exchange (ledger_id);
CREATE INDEX IF NOT EXISTS audit_exchange_message_idx ON iemk.audit_exchange (message_id);
CREATE INDEX IF NOT EXISTS audit_exchange_relates_idx ON iemk.audit_exchange (relates_to);
CREATE INDEX IF NOT EXISTS audit_exchange_at_idx ON iemk.audit_exchange (at);
