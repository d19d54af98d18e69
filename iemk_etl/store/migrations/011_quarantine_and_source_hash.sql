-- Re-runnable (IF NOT EXISTS, ON CONFLICT): a schema one migration behind is brought current by applying it again.
-- What a formed document was built from: a hash of the МИС record (the builder's input), so that a change of the
-- builders alone (a release) never makes a signed document's next version; only a change of the record does.
-- Rows formed before this migration have none: forming compares their bytes once, then stores the hash.
ALTER TABLE mis.semd_document ADD COLUMN IF NOT EXISTS source_hash text;
COMMENT ON COLUMN mis.semd_document.source_hash IS
    'sha256 of the canonical МИС record the document was formed from (forming.record_hash)';

-- Every MessageID we sent a document under, every round: a reply counts only when it relates to one of them.
CREATE TABLE IF NOT EXISTS iemk.sent_message (
    message_id  text PRIMARY KEY,
    ledger_id   bigint NOT NULL REFERENCES iemk.ledger(id) ON DELETE CASCADE,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sent_message_ledger_idx ON iemk.sent_message (ledger_id);
INSERT INTO iemk.sent_message (message_id, ledger_id, sent_at)
    SELECT message_id, id, coalesce(last_sent_at, updated_at) FROM iemk.ledger WHERE message_id IS NOT NULL
    ON CONFLICT DO NOTHING;

-- Replies that relate to nothing we sent (or to nothing at all): kept apart from the inbox, which moves statuses,
-- counted (hits: the same MessageID posted again), capped in size and purged after IEMK_QUARANTINE_DAYS.
CREATE TABLE IF NOT EXISTS iemk.reply_quarantine (
    message_id        text PRIMARY KEY,
    relates_to        text,
    action            text,
    reason            text NOT NULL CHECK (reason IN ('no_relates_to', 'unknown_relates_to', 'unsigned',
                                                      'bad_signature')),
    hits              int  NOT NULL DEFAULT 1,
    received_at       timestamptz NOT NULL DEFAULT now(),
    last_received_at  timestamptz NOT NULL DEFAULT now(),
    body_bytes        int  NOT NULL,          -- the size posted; body keeps at most its first MiB
    body              bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS reply_quarantine_relates_idx ON iemk.reply_quarantine (relates_to);
CREATE INDEX IF NOT EXISTS reply_quarantine_received_idx ON iemk.reply_quarantine (last_received_at);

-- Replies the inbox took before this rule existed and that relate to nothing we sent: out of the inbox.
WITH junk AS (
    DELETE FROM iemk.inbox i
    WHERE i.processed_at IS NULL
      AND (i.relates_to IS NULL OR NOT EXISTS (SELECT 1 FROM iemk.sent_message s WHERE s.message_id = i.relates_to))
    RETURNING i.message_id, i.relates_to, i.action, i.received_at, i.body
)
INSERT INTO iemk.reply_quarantine (message_id, relates_to, action, reason, received_at, last_received_at,
                                   body_bytes, body)
SELECT message_id, relates_to, action, CASE WHEN relates_to IS NULL THEN 'no_relates_to' ELSE 'unknown_relates_to' END,
       received_at, received_at, length(body), substring(body FROM 1 FOR 1048576)
FROM junk
ON CONFLICT DO NOTHING;
