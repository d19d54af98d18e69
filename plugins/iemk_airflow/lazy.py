"""Modules imported on first use: the DAG file stays cheap to parse.

A worker parses the DAG file before each task; the task bodies need the pipeline (psycopg, lxml, zeep, the signing
code: about a second to import), building the DAGs does not. ``lazy("iemk_etl.pipeline.send")`` stands for the
module and imports it when one of its attributes is first read.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    __slots__ = ("_lazy_name", "_lazy_module")

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_lazy_name", name)
        object.__setattr__(self, "_lazy_module", None)

    def _load(self) -> ModuleType:
        module = object.__getattribute__(self, "_lazy_module")
        if module is None:
            module = importlib.import_module(object.__getattribute__(self, "_lazy_name"))
            object.__setattr__(self, "_lazy_module", module)
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:   # monkeypatching a test's way reaches the real module
        setattr(self._load(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._load(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {object.__getattribute__(self, '_lazy_name')}>"


def lazy(name: str) -> Any:
    """The module ``name``, imported when first used (typed Any: attribute access is checked at run time)."""
    return LazyModule(name)
