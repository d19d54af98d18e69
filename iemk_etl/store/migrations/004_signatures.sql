-- The МО's own signature on a СЭМД (kinds whose signing rules require it), beside the doctor's.
ALTER TABLE mis.semd_document ADD COLUMN org_signature bytea;
COMMENT ON COLUMN mis.semd_document.signature IS 'detached CMS (CAdES-BES, GOST R 34.10-2012) of the author over cda';
COMMENT ON COLUMN mis.semd_document.org_signature IS 'detached CMS of the МО over cda, where the kind requires it';
