-- The emulator's state in its own schema `emulator` (created by the migration runner, bookkeeping in
-- emulator.schema_migration). IF NOT EXISTS throughout: a schema made before this bookkeeping existed
-- takes this migration as a no-op, and the ALTERs bring its older tables up to date.
CREATE TABLE IF NOT EXISTS emulator.message (
    message_id   text PRIMARY KEY,
    service      text NOT NULL,
    action       text,
    client_id    text,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    verdict      text NOT NULL,            -- accepted | fault | success | failure
    detail       text,
    repeats      int NOT NULL DEFAULT 0    -- the same MessageID delivered again (client retries)
);
CREATE INDEX IF NOT EXISTS message_received_idx ON emulator.message (received_at DESC);
CREATE TABLE IF NOT EXISTS emulator.document (
    unique_id     text PRIMARY KEY,
    patient_id    text NOT NULL,
    mo_oid        text,
    kind_code     int NOT NULL,
    content_hash  text NOT NULL,
    data          bytea NOT NULL,
    message_id    text NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS emulator.submission (
    message_id   text PRIMARY KEY REFERENCES emulator.message(message_id),
    reply_to     text NOT NULL,
    unique_id    text,
    patient_id   text,
    kind_code    int,
    author       text,
    data         bytea,
    replaces     text
);
CREATE TABLE IF NOT EXISTS emulator.reply (
    id           bigserial PRIMARY KEY,
    relates_to   text NOT NULL REFERENCES emulator.message(message_id),
    reply_to     text NOT NULL,
    due_at       timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'pending',   -- pending | delivered | undelivered | lost
    attempts     int NOT NULL DEFAULT 0,
    body         bytea,
    last_error   text
);
CREATE INDEX IF NOT EXISTS reply_due_idx ON emulator.reply (due_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS emulator.patient (
    mo_oid      text NOT NULL,
    local_id    text NOT NULL,
    family      text,
    given       text,
    patronymic  text,
    gender      text,
    birth_time  text,
    snils       text,
    other_ids   jsonb NOT NULL DEFAULT '[]',
    revision    int NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (mo_oid, local_id)
);
CREATE INDEX IF NOT EXISTS patient_snils_idx ON emulator.patient (snils);
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS creation_time timestamptz;
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'Approved';
ALTER TABLE emulator.document ADD COLUMN IF NOT EXISTS replaces text;
ALTER TABLE emulator.submission ADD COLUMN IF NOT EXISTS replaces text;
