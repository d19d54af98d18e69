"""The document statuses a МИС user sees, spelled as the seed and ЕГИСЗ spell them; the one copy of these words.

``mis.semd_document.status`` holds one of the four plain statuses or «Ошибка: <причина>» (migration 001 checks it).
"""

from __future__ import annotations

NOT_SIGNED = "Не подписан"
SIGNED = "Подписан"
SENT = "Передан в ИЭМК"
STORED = "Сохранен в ИЭМК"
ERROR = "Ошибка"
ERROR_PREFIX = ERROR + ": "

# The order reports list them in: the life of a document, errors last.
ORDER = (NOT_SIGNED, SIGNED, SENT, STORED, ERROR)

# Texts stored in the МИС and the ledger are cut here: a whole stack of findings is not a status.
MAX_TEXT = 2000


def error(reason: str | None) -> str:
    """«Ошибка: <reason>», cut to what the status column keeps."""
    return (ERROR_PREFIX + (reason or "причина не указана"))[:MAX_TEXT]


def clip(text: str | None) -> str | None:
    """An error text cut to what the ledger keeps (None stays None)."""
    return text[:MAX_TEXT] if text else None


def family(status: str) -> str:
    """The status without its reason: «Ошибка: …» → «Ошибка»."""
    return ERROR if status.startswith(ERROR_PREFIX) else status
