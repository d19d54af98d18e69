-- Re-runnable (IF NOT EXISTS, DROP … IF EXISTS, guarded UPDATE): applying it again changes nothing.
-- What the PIX feed needs to send a patient as the real ИЭМК sample does (../shared/samples/pix, issue 12):
-- the ДУЛ's kind in ИЭМК's own classifier, the СМО code of the ОМС policy, and МО OIDs of the legacy registry form.
-- The patient's phone (phone) and the ДУЛ's issuing authority (id_doc_issued_by) exist since 007.

-- The ДУЛ's type by НСИ 1.2.643.5.1.13.2.1.1.498 «Классификатор документов, удостоверяющих личность гражданина
-- Российской Федерации» (14 = паспорт гражданина РФ), which the feed sends as documentType/qualifier/name; the
-- existing id_doc_type keeps НСИ 1.2.643.5.1.13.13.99.2.48 for the СЭМД.
ALTER TABLE mis.patient ADD COLUMN IF NOT EXISTS id_doc_type_iemk smallint;
COMMENT ON COLUMN mis.patient.id_doc_type_iemk IS
    'ДУЛ type by НСИ 1.2.643.5.1.13.2.1.1.498 (14 = паспорт гражданина РФ), sent in the PIX feed';
-- The СМО that issued the ОМС policy, by its code in the СМО registry 1.2.643.5.1.13.2.1.1.635 (the feed's
-- scopingOrganization/id/@extension); oms_insurer keeps its name.
ALTER TABLE mis.patient ADD COLUMN IF NOT EXISTS oms_insurer_code text;
COMMENT ON COLUMN mis.patient.oms_insurer_code IS
    'code of the СМО that issued the ОМС policy, registry 1.2.643.5.1.13.2.1.1.635';

-- A passport by НСИ 48 is a passport by НСИ 498. Done before the hash below is widened, so that this backfill
-- alone moves no hash and queues nothing.
UPDATE mis.patient SET id_doc_type_iemk = 14 WHERE id_doc_type = 1 AND id_doc_type_iemk IS NULL;

-- The public sample's МО is registered under the legacy МО registry (MDR308, 1.2.643.5.1.13.3.25.<region>.<n>);
-- ФРМО OIDs (1.2.643.5.1.13.13.12.2.<region>.<n>) stay the usual form.
ALTER TABLE mis.mo DROP CONSTRAINT IF EXISTS mo_oid_check;
ALTER TABLE mis.mo ADD CONSTRAINT mo_oid_check
    CHECK (oid ~ '^1\.2\.643\.5\.1\.13\.(13\.12\.2|3\.25)\.[0-9]+\.[0-9]+$');

-- The demographics ИЭМК is told now include the phone, the ДУЛ's kind and issuer and the СМО code, so a change of
-- any of them is a revise. Widening the hash (its 'v2' marker moves it even where the new fields are empty) moves
-- it for every existing patient: each registered patient is sent
-- once more, as a revise (one wave, the next time a document of theirs is fed), which also gives ИЭМК the fields
-- the earlier feed left out.
CREATE OR REPLACE FUNCTION iemk.patient_demographics_hash(p mis.patient) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT md5(concat_ws('|', p.local_id, p.family, p.given, p.patronymic, p.birth_date, p.sex, p.snils,
                         p.oms_policy, p.id_doc_type, p.id_doc_series, p.id_doc_number,
                         'v2', p.phone, p.id_doc_type_iemk, p.id_doc_issued_by, p.oms_insurer_code))
$$;
