-- A document sent again on purpose (reconcile found it missing in ИЭМК) needs a new MessageID: the receiver
-- drops a MessageID it has seen. The round is part of how the MessageID is derived.
ALTER TABLE iemk.ledger ADD COLUMN resend_round int NOT NULL DEFAULT 0;
