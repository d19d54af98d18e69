-- IHE XDS metadata the registry keeps per entry (issue 12): its entryUUID, the SHA-1 hash and size IHE defines,
-- the НСИ 1522 type read from the document, the classCode/formatCode as submitted; and each submission's
-- metadata as the request gave it. Idempotent; rows stored before this migration get an entryUUID and a size
-- here, and their SHA-1 (PostgreSQL has no built-in SHA-1) when the emulator's store opens or answers ITI-18
-- (Store._complete_documents).
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS entry_uuid text;
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS sha1 text;
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS size bigint;
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS doc_type int;
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS class_code text;
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS format_code text;
ALTER TABLE emulator.submission ADD COLUMN IF NOT EXISTS metadata jsonb;
UPDATE emulator.document SET entry_uuid = 'urn:uuid:' || gen_random_uuid() WHERE entry_uuid IS NULL;
UPDATE emulator.document SET size = octet_length(data) WHERE size IS NULL;
