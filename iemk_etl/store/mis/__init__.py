"""The МИС adapter: the only code that reads or writes the ``mis.*`` tables.

A hospital whose МИС has another schema replaces this package and nothing else. Every function takes an open
psycopg connection and returns plain values or small dataclasses; what to do with them is the pipeline's call.

- ``mo``:        the МО directory (mis.mo)
- ``clinical``:  the clinical records a period's СЭМД are formed from (``Source``)
- ``documents``: the СЭМД rows themselves (mis.semd_document): forming, signing, the visible status
- ``exchange``:  statements that join the integration's own rows (iemk.outbox, iemk.ledger, the patient feed)
                 to the МИС documents and patients they stand for
- ``seed``:      writing demo records (dev tools only)
"""
