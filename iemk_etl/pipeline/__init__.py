"""The use cases, one module per step.

The export of one МО's documents for one period, as the DAG runs it:
``extract`` → ``validate`` → ``patients`` (feed) → ``send`` → (wait) → ``replies`` (apply, write back);
``deliver`` runs the same steps at once for chosen documents («Передать документ в ИЭМК»).
Before the export: ``forming`` («Получить документы») and ``sign``. Beside it: ``reconcile``, ``queries``
(asking ИЭМК directly) and ``report`` (for people).

Each step takes and returns ledger ids, reads everything else from the database (``iemk_etl.store``), and can
be repeated: a step re-run on the same ids does nothing that was already done, and nothing is sent twice.
"""
