-- The МИС's clinical data the six СЭМД kinds are formed from (issue 5).
-- Addresses and phones first: СЭМД headers carry them for the МО, the patient and the staff.
ALTER TABLE mis.mo ADD COLUMN address text, ADD COLUMN postal_code text, ADD COLUMN phone text,
    ADD COLUMN ogrn text CHECK (ogrn ~ '^[0-9]{13}$'),
    ADD COLUMN fias_aoguid uuid, ADD COLUMN fias_houseguid uuid;
ALTER TABLE mis.patient ADD COLUMN address text, ADD COLUMN postal_code text, ADD COLUMN region int,
    ADD COLUMN phone text, ADD COLUMN id_doc_issued_by text, ADD COLUMN id_doc_issued_on date,
    ADD COLUMN oms_insurer text;
ALTER TABLE mis.staff ADD COLUMN phone text;

-- A hospital stay (история болезни) and the departments the patient stayed in, in order.
CREATE TABLE mis.hospitalisation (
    id            bigserial PRIMARY KEY,
    mo_oid        text NOT NULL REFERENCES mis.mo(oid),
    patient_id    bigint NOT NULL REFERENCES mis.patient(id),
    case_number   text NOT NULL,
    admitted_at   timestamptz NOT NULL,
    discharged_at timestamptz,                 -- NULL while the patient is in hospital
    urgent        boolean NOT NULL DEFAULT false,
    complaints    text,
    anamnesis     text,
    outcome       text,
    UNIQUE (mo_oid, case_number)
);

CREATE TABLE mis.department_stay (
    id                 bigserial PRIMARY KEY,
    hospitalisation_id bigint NOT NULL REFERENCES mis.hospitalisation(id),
    department_id      bigint NOT NULL REFERENCES mis.department(id),
    doctor_id          bigint NOT NULL REFERENCES mis.staff(id),
    started_at         timestamptz NOT NULL,
    ended_at           timestamptz,
    condition          text,
    treatment          text,
    recommendations    text,
    transferred        boolean NOT NULL DEFAULT false,
    admission_state    smallint,   -- НСИ 1.2.643.5.1.13.13.11.1006 «Степень тяжести состояния пациента»
    discharge_state    smallint,   -- the same, at discharge or transfer
    result             smallint,   -- НСИ 1.2.643.5.1.13.13.11.1046 «Результаты обращения (госпитализации)»
    surgery            text,
    diet               text,
    work               text
);

CREATE TABLE mis.visit (
    id              bigserial PRIMARY KEY,
    mo_oid          text NOT NULL REFERENCES mis.mo(oid),
    patient_id      bigint NOT NULL REFERENCES mis.patient(id),
    doctor_id       bigint NOT NULL REFERENCES mis.staff(id),
    local_id        text NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz NOT NULL,
    complaints      text,
    anamnesis       text,
    objective       text,
    conclusion      text,
    recommendations text,
    service_code    text NOT NULL DEFAULT 'B01.047.001',   -- the visit itself as a service (НСИ 1070)
    service_name    text NOT NULL DEFAULT 'Прием (осмотр, консультация) врача-терапевта первичный',
    repeat          boolean NOT NULL DEFAULT false,
    UNIQUE (mo_oid, local_id)
);

-- A service belongs to a visit, or (a consultation in hospital) to the department stay that asked for it.
CREATE TABLE mis.service (
    id                 bigserial PRIMARY KEY,
    mo_oid             text NOT NULL REFERENCES mis.mo(oid),
    patient_id         bigint NOT NULL REFERENCES mis.patient(id),
    visit_id           bigint REFERENCES mis.visit(id),
    local_id           text NOT NULL,
    code               text NOT NULL,          -- НСИ 1.2.643.5.1.13.13.11.1070 «Номенклатура медицинских услуг»
    name               text NOT NULL,
    type               text NOT NULL CHECK (type IN ('Анализ', 'Посещение', 'Инструментальное исследование')),
    performed_at       timestamptz NOT NULL,
    performer_id       bigint NOT NULL REFERENCES mis.staff(id),
    referred_from_stay_id bigint REFERENCES mis.department_stay(id),  -- a consultation asked for by a department
    referred_by_id     bigint REFERENCES mis.staff(id),
    referral_number    text,
    referred_at        timestamptz,
    specimen_taken_at  timestamptz,
    complaints         text,
    findings           text,
    conclusion         text,
    recommendations    text,
    anamnesis          text,
    life_anamnesis     text,
    condition          smallint,                -- НСИ 1.2.643.5.1.13.13.11.1006
    repeat             boolean NOT NULL DEFAULT false,
    case_id            text,                    -- the case (талон, история болезни) the service belongs to
    case_started_at    timestamptz,
    analyser_id        text,                    -- the lab analyser in the МИС's equipment register
    analyser_name      text,
    UNIQUE (mo_oid, local_id),
    CHECK (visit_id IS NOT NULL OR referred_from_stay_id IS NOT NULL)
);

-- A diagnosis belongs to a visit, a department stay or a service (exactly one of them).
CREATE TABLE mis.diagnosis (
    id         bigserial PRIMARY KEY,
    visit_id   bigint REFERENCES mis.visit(id),
    stay_id    bigint REFERENCES mis.department_stay(id),
    service_id bigint REFERENCES mis.service(id),
    role       text NOT NULL DEFAULT 'main' CHECK (role IN ('main', 'complication', 'concomitant')),
    icd10      text NOT NULL,                  -- МКБ-10, НСИ 1.2.643.5.1.13.13.11.1005
    name       text NOT NULL,
    note       text,
    ordinal    int NOT NULL DEFAULT 1,
    at_admission boolean NOT NULL DEFAULT false,   -- a stay's diagnosis on admission to the department
    CHECK (num_nonnulls(visit_id, stay_id, service_id) = 1)
);

CREATE TABLE mis.lab_result (
    id             bigserial PRIMARY KEY,
    service_id     bigint NOT NULL REFERENCES mis.service(id),
    ordinal        int NOT NULL,
    test_code      text NOT NULL,              -- НСИ 1.2.643.5.1.13.13.11.1080
    test_name      text NOT NULL,
    value          text NOT NULL,
    unit           text,
    ref_low        text,
    ref_high       text,
    interpretation text CHECK (interpretation IN ('N', 'H', 'L')),
    specimen       text,
    comment        text
);

-- The biomaterial a lab service was done on, as the lab registered it.
CREATE TABLE mis.specimen (
    service_id      bigint PRIMARY KEY REFERENCES mis.service(id),
    barcode         text NOT NULL,
    material_code   text NOT NULL,              -- НСИ 1.2.643.5.1.13.13.99.2.1019
    material_name   text NOT NULL,
    received_at     timestamptz,
    volume_ml       text,
    container       text,
    collected_by_id bigint REFERENCES mis.staff(id)
);

-- Referrals issued at a visit (form 057/у-04).
CREATE TABLE mis.referral (
    id              bigserial PRIMARY KEY,
    visit_id        bigint NOT NULL REFERENCES mis.visit(id),
    local_id        text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('hospitalisation', 'consultation', 'lab', 'diagnostic')),
    issued_at       timestamptz NOT NULL,
    target_mo_oid   text NOT NULL,
    target_mo_name  text NOT NULL,
    target_service  text NOT NULL,
    service_code    text,                       -- the requested service, НСИ 1070 (consultation, lab, study)
    icd10           text NOT NULL,
    icd10_name      text NOT NULL,
    reason          text NOT NULL,
    urgent          boolean NOT NULL DEFAULT false,
    UNIQUE (visit_id, local_id)
);

-- Report templates filled at a visit; to_iemk = the seed's VIS_TEMPLATE_REPORTS.TO_IEMK = 1.
CREATE TABLE mis.report_template (
    id         bigserial PRIMARY KEY,
    visit_id   bigint NOT NULL REFERENCES mis.visit(id),
    name       text NOT NULL,
    file_name  text NOT NULL,
    content    bytea NOT NULL,
    to_iemk    boolean NOT NULL DEFAULT false,
    signed_at  timestamptz
);

-- Which МИС record a СЭМД was formed from: forming the same period again finds it and adds nothing.
ALTER TABLE mis.semd_document ADD COLUMN source text;
CREATE UNIQUE INDEX semd_document_source_idx ON mis.semd_document (mo_oid, kind_code, source, version)
    WHERE source IS NOT NULL;
