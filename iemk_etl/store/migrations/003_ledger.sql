-- The ledger: the record of what was exported, one row per (МО, document uniqueId, version).
-- Airflow's task states are never the record; this table is.
CREATE TABLE iemk.ledger (
    id             bigserial PRIMARY KEY,
    mo_oid         text NOT NULL REFERENCES mis.mo(oid),
    unique_id      text NOT NULL,
    version        int  NOT NULL,
    document_id    bigint NOT NULL REFERENCES mis.semd_document(id),
    kind_code      int  NOT NULL,
    signed_at      timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued', 'valid', 'invalid', 'sent', 'stored', 'rejected', 'failed')),
    attempts       int  NOT NULL DEFAULT 0,
    content_hash   text NOT NULL,
    message_id     text UNIQUE,
    error_code     text,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    first_sent_at  timestamptz,
    last_sent_at   timestamptz,
    replied_at     timestamptz,
    UNIQUE (mo_oid, unique_id, version)
);
CREATE INDEX ledger_mo_state_idx ON iemk.ledger (mo_oid, state);
CREATE INDEX ledger_mo_signed_idx ON iemk.ledger (mo_oid, signed_at);

-- Every asynchronous reply the callback receiver acknowledged, exactly once per MessageID.
CREATE TABLE iemk.inbox (
    message_id    text PRIMARY KEY,
    relates_to    text,
    action        text,
    received_at   timestamptz NOT NULL DEFAULT now(),
    body          bytea NOT NULL,
    processed_at  timestamptz
);
CREATE INDEX inbox_relates_to_idx ON iemk.inbox (relates_to);
