-- НСИ dictionaries (ФНСИ) by OID and version: the passport and the rows. Loaded by `iemk-etl nsi load|sync`,
-- read by the НСИ control of ФЛК. A version is immutable in ФНСИ; a reload of the same version replaces its rows
-- only when the content hash differs.
CREATE TABLE IF NOT EXISTS iemk.nsi_dictionary (
    oid           text        NOT NULL,
    version       text        NOT NULL,
    name          text        NOT NULL,
    columns       jsonb       NOT NULL,       -- [{"field", "dataType", "alias"}] as the passport lists them
    code_column   text        NOT NULL,       -- the passport's PRIMARY key field
    name_column   text,                       -- the passport's VALUE key field (the display name)
    publish_date  text,                       -- as ФНСИ writes it (dd.mm.yyyy hh:mm)
    rows_count    integer     NOT NULL,
    content_hash  text        NOT NULL,       -- sha256 of the columns and rows, canonical JSON
    source        text        NOT NULL,       -- a file path or the ФНСИ URL it came from
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (oid, version)
);

CREATE TABLE IF NOT EXISTS iemk.nsi_row (
    oid           text  NOT NULL,
    version       text  NOT NULL,
    code          text  NOT NULL,
    display_name  text,
    other         jsonb NOT NULL DEFAULT '{}'::jsonb,   -- every other column of the row
    PRIMARY KEY (oid, version, code),
    FOREIGN KEY (oid, version) REFERENCES iemk.nsi_dictionary (oid, version) ON DELETE CASCADE
);
