-- The hot paths: a document's ledger rows (status, queries, reports, the submission query) and a МО's
-- documents of a period (sign-and-send, reconcile).
CREATE INDEX IF NOT EXISTS ledger_document_idx ON iemk.ledger (document_id);
CREATE INDEX IF NOT EXISTS semd_document_mo_created_idx ON mis.semd_document (mo_oid, created_at);
