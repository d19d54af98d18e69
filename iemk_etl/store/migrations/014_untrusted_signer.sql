-- Re-runnable (DROP/ADD of one named constraint, an UPDATE that finds nothing the second time).
-- IEMK_REPLY_SIGNATURE=require: a reply that is unsigned, whose signature does not verify under the reply profile, or
-- that is signed by a certificate not pinned in IEMK_REPLY_CERTIFICATES waits in quarantine as 'untrusted_signer'.
-- The older reasons stay allowed (a receiver of the previous release may still be running during an upgrade).
ALTER TABLE iemk.reply_quarantine DROP CONSTRAINT IF EXISTS reply_quarantine_reason_check;
ALTER TABLE iemk.reply_quarantine ADD CONSTRAINT reply_quarantine_reason_check
    CHECK (reason IN ('no_relates_to', 'unknown_relates_to', 'untrusted_signer', 'unsigned', 'bad_signature'));
-- Rows of the previous release's two signature reasons are one reason now, so `status` counts them together.
UPDATE iemk.reply_quarantine SET reason = 'untrusted_signer' WHERE reason IN ('unsigned', 'bad_signature');
