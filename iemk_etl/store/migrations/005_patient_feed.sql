-- The patient feed to ИЭМК (PIX): what was sent for each state of a patient's data, and what ИЭМК knows.
CREATE TABLE iemk.patient_feed (
    patient_id    bigint NOT NULL REFERENCES mis.patient(id),
    payload_hash  text NOT NULL,                       -- iemk.patient_demographics_hash at the time
    mo_oid        text NOT NULL REFERENCES mis.mo(oid),
    interaction   text NOT NULL CHECK (interaction IN ('add', 'revise')),
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'accepted', 'rejected', 'failed')),
    message_id    text,
    attempts      int NOT NULL DEFAULT 0,
    ack_text      text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, payload_hash)
);

-- The demographics ИЭМК accepted last, per patient: an add the first time, a revise when the hash moves on.
CREATE TABLE iemk.patient_registration (
    patient_id     bigint PRIMARY KEY REFERENCES mis.patient(id),
    mo_oid         text NOT NULL REFERENCES mis.mo(oid),
    payload_hash   text NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);
