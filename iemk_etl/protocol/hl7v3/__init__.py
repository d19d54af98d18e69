"""HL7v3 patient messages of the federal ИЭМК (RU-localised IHE PIX feed and PDQ), one module per transaction.

- ``common``: the patient record (written and read once for both transactions) and the transmission wrapper;
- ``pix``: ITI-44 patient identity feed, PRPA_IN201301RU02 (add) / PRPA_IN201302RU02 (revise), acknowledged by
  MCCI_IN000002UV01;
- ``pdq``: ITI-47 patient demographics query, PRPA_IN201305UV02 → PRPA_IN201306UV02.

Shapes follow the public sample in ../shared/samples/pix. Import the module you need:
``from iemk_etl.protocol.hl7v3 import pix``.
"""
