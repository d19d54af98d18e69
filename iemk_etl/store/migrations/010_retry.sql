-- Idempotent: every statement may run again (a schema marked one migration behind re-applies it).
-- The backoff ladder across runs (issue 11): a document that met a transient failure (or whose answer was lost)
-- waits until next_attempt_at; retry_step counts the ladder steps used since retry_since (the first try of the
-- sequence), so the end of the ladder is known and its dates can be told.
ALTER TABLE iemk.ledger ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
ALTER TABLE iemk.ledger ADD COLUMN IF NOT EXISTS retry_step int NOT NULL DEFAULT 0;
ALTER TABLE iemk.ledger ADD COLUMN IF NOT EXISTS retry_since timestamptz;

-- Every finished round of a document (a new round gets a new MessageID): what it ended in and why, kept when the
-- document is sent again by a requeue, a lost answer, a busy registry or reconcile.
CREATE TABLE IF NOT EXISTS iemk.ledger_round (
    ledger_id      bigint NOT NULL REFERENCES iemk.ledger(id) ON DELETE CASCADE,
    round          int    NOT NULL,
    message_id     text,
    state          text   NOT NULL,
    error_code     text,
    last_error     text,
    attempts       int    NOT NULL,
    first_sent_at  timestamptz,
    last_sent_at   timestamptz,
    replied_at     timestamptz,
    ended_at       timestamptz NOT NULL DEFAULT now(),
    next_reason    text,               -- why the next round was started
    PRIMARY KEY (ledger_id, round)
);

-- The lost-answer lookup: an МО's sent documents by when they were last sent.
CREATE INDEX IF NOT EXISTS ledger_mo_sent_idx ON iemk.ledger (mo_oid, last_sent_at) WHERE state = 'sent';
