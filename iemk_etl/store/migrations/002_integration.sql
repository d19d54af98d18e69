-- The integration section: external system fed_iemk, the per-МО switch of its two procedures, and the
-- outbox the procedures feed from the МИС's own writes.
CREATE SCHEMA IF NOT EXISTS iemk;

CREATE TABLE iemk.external_system (
    code  text PRIMARY KEY,
    name  text NOT NULL
);
INSERT INTO iemk.external_system VALUES ('fed_iemk', 'ИЭМК ФС ЕГИСЗ');

CREATE TABLE iemk.integration_procedure (
    code             text PRIMARY KEY,
    external_system  text NOT NULL REFERENCES iemk.external_system(code),
    ordinal          int  NOT NULL,
    name             text NOT NULL
);
INSERT INTO iemk.integration_procedure VALUES
    ('fed_iemk_semd_signed', 'fed_iemk', 1, 'Постановка подписанного СЭМД в очередь на передачу в ИЭМК'),
    ('fed_iemk_patient_changed', 'fed_iemk', 2, 'Постановка в очередь добавления или изменения пациента в ИЭМК');

CREATE TABLE iemk.mo_integration (
    mo_oid          text NOT NULL REFERENCES mis.mo(oid),
    procedure_code  text NOT NULL REFERENCES iemk.integration_procedure(code),
    enabled         boolean NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mo_oid, procedure_code)
);

CREATE FUNCTION iemk.procedure_enabled(p_mo_oid text, p_procedure text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT enabled FROM iemk.mo_integration
                     WHERE mo_oid = p_mo_oid AND procedure_code = p_procedure), false)
$$;

-- Work for the exporter. A document version or a patient state is enqueued once.
CREATE TABLE iemk.outbox (
    id            bigserial PRIMARY KEY,
    mo_oid        text NOT NULL REFERENCES mis.mo(oid),
    item_type     text NOT NULL CHECK (item_type IN ('document', 'patient')),
    document_id   bigint REFERENCES mis.semd_document(id),
    doc_version   int,
    patient_id    bigint REFERENCES mis.patient(id),
    payload_hash  text,
    event_at      timestamptz NOT NULL,     -- when the МИС signed the document / changed the patient
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((item_type = 'document') = (document_id IS NOT NULL))
);
CREATE UNIQUE INDEX outbox_document_uq ON iemk.outbox (document_id, doc_version) WHERE item_type = 'document';
CREATE UNIQUE INDEX outbox_patient_uq ON iemk.outbox (patient_id, payload_hash) WHERE item_type = 'patient';
CREATE INDEX outbox_mo_event_idx ON iemk.outbox (mo_oid, item_type, event_at);

-- Procedure 1: a signed СЭМД goes to the outbox (only where the МО's integration is on).
CREATE FUNCTION iemk.enqueue_signed_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.signed_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.signed_at IS NULL OR OLD.version IS DISTINCT FROM NEW.version)
       AND iemk.procedure_enabled(NEW.mo_oid, 'fed_iemk_semd_signed') THEN
        INSERT INTO iemk.outbox (mo_oid, item_type, document_id, doc_version, patient_id, event_at)
        VALUES (NEW.mo_oid, 'document', NEW.id, NEW.version, NEW.patient_id, NEW.signed_at)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER semd_document_signed
    AFTER INSERT OR UPDATE OF signed_at, version ON mis.semd_document
    FOR EACH ROW EXECUTE FUNCTION iemk.enqueue_signed_document();

-- The demographic part of a patient, as ИЭМК knows it; a change of it is a revision to send.
CREATE FUNCTION iemk.patient_demographics_hash(p mis.patient) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT md5(concat_ws('|', p.local_id, p.family, p.given, p.patronymic, p.birth_date, p.sex, p.snils,
                         p.oms_policy, p.id_doc_type, p.id_doc_series, p.id_doc_number))
$$;

-- Procedure 2: a new patient or a change of their data goes to the outbox as an add / revise.
CREATE FUNCTION iemk.enqueue_patient_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_hash text := iemk.patient_demographics_hash(NEW);
BEGIN
    IF (TG_OP = 'INSERT' OR iemk.patient_demographics_hash(OLD) <> new_hash)
       AND iemk.procedure_enabled(NEW.mo_oid, 'fed_iemk_patient_changed') THEN
        INSERT INTO iemk.outbox (mo_oid, item_type, patient_id, payload_hash, event_at)
        VALUES (NEW.mo_oid, 'patient', NEW.id, new_hash, NEW.updated_at)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER patient_changed
    AFTER INSERT OR UPDATE ON mis.patient
    FOR EACH ROW EXECUTE FUNCTION iemk.enqueue_patient_change();
