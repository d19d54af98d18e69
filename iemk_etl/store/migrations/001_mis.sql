-- The reference МИС schema: the hospital information system's side that iemk-etl exports from.
-- A real МИС keeps its own tables; this one is what the demo, the tests and new integrations start from.
CREATE SCHEMA IF NOT EXISTS mis;

CREATE TABLE mis.mo (
    oid        text PRIMARY KEY CHECK (oid ~ '^1\.2\.643\.5\.1\.13\.13\.12\.2\.[0-9]+\.[0-9]+$'),
    code       text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9_]+$'),
    name       text NOT NULL,
    region     int  NOT NULL
);

CREATE TABLE mis.department (
    id      bigserial PRIMARY KEY,
    mo_oid  text NOT NULL REFERENCES mis.mo(oid),
    oid     text NOT NULL UNIQUE,
    name    text NOT NULL
);

CREATE TABLE mis.staff (
    id             bigserial PRIMARY KEY,
    mo_oid         text NOT NULL REFERENCES mis.mo(oid),
    department_id  bigint REFERENCES mis.department(id),
    local_id       text NOT NULL,
    snils          char(11) NOT NULL,
    family         text NOT NULL,
    given          text NOT NULL,
    patronymic     text,
    position_code  text NOT NULL,   -- НСИ 1.2.643.5.1.13.13.11.1002 «Должности работников»
    position_name  text NOT NULL,
    UNIQUE (mo_oid, local_id)
);

CREATE TABLE mis.patient (
    id              bigserial PRIMARY KEY,
    mo_oid          text NOT NULL REFERENCES mis.mo(oid),
    local_id        text NOT NULL,
    family          text NOT NULL,
    given           text NOT NULL,
    patronymic      text,
    birth_date      date NOT NULL,
    sex             smallint NOT NULL CHECK (sex IN (1, 2, 3)),  -- НСИ 1.2.643.5.1.13.13.11.1040
    snils           char(11),
    oms_policy      text,
    id_doc_type     smallint,      -- НСИ 1.2.643.5.1.13.13.99.2.48, 1 = паспорт гражданина РФ
    id_doc_series   text,
    id_doc_number   text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mo_oid, local_id)
);

-- One row per СЭМД version formed by the МИС. status is what users see in the МИС.
CREATE TABLE mis.semd_document (
    id          bigserial PRIMARY KEY,
    mo_oid      text NOT NULL REFERENCES mis.mo(oid),
    kind_code   int  NOT NULL,          -- НСИ 1.2.643.5.1.13.13.11.1520
    patient_id  bigint NOT NULL REFERENCES mis.patient(id),
    author_id   bigint NOT NULL REFERENCES mis.staff(id),
    local_uid   text NOT NULL,          -- ClinicalDocument/id/@extension
    version     int  NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    signed_at   timestamptz,
    cda         bytea NOT NULL,
    signature   bytea,                  -- detached CMS over the exact cda bytes
    status      text NOT NULL DEFAULT 'Не подписан',
    status_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mo_oid, local_uid, version),
    CHECK (status IN ('Не подписан', 'Подписан', 'Передан в ИЭМК', 'Сохранен в ИЭМК') OR status LIKE 'Ошибка: %')
);
CREATE INDEX semd_document_signed_idx ON mis.semd_document (mo_oid, signed_at);
