"""``@sensor_task``: Airflow's ``@task.sensor`` without the provider's deprecation warning in every task log.

apache-airflow-providers-standard 1.21.0 (the newest) builds ``@task.sensor`` on its ``PythonSensor``, whose module
imports ``airflow.utils.operator_helpers.determine_kwargs``, a deprecated shim in Airflow 3.3: every process that
parses a DAG using ``@task.sensor`` — each task's too — logs a ``DeprecatedImportWarning``. This is the same
decorator built from the task SDK alone (``airflow.sdk``: BaseSensorOperator, the decorator factory and
``determine_kwargs`` where they live now). Use it as ``@sensor_task(mode="reschedule")``; ``.override()`` and
XCom arguments work as with ``@task.sensor``. Drop it once the provider imports from the SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.bases.decorator import TaskDecorator, determine_kwargs, get_unique_task_id, task_decorator_factory
from airflow.sdk.definitions.context import context_merge


class DecoratedSensor(BaseSensorOperator):
    """Pokes a Python callable (returning a ``PokeReturnValue`` or a truth value) with its XCom arguments."""

    template_fields: Sequence[str] = ("op_args", "op_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {"op_args": "py", "op_kwargs": "py"}
    custom_operator_name = "@task.sensor"
    shallow_copy_attrs: Sequence[str] = ("python_callable",)

    def __init__(self, *, task_id: str, python_callable: Callable[..., Any], op_args: Sequence[Any] | None = None,
                 op_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.pop("multiple_outputs", None)
        super().__init__(task_id=get_unique_task_id(task_id, kwargs.get("dag"), kwargs.get("task_group")), **kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})

    def poke(self, context: Any) -> PokeReturnValue:
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        value = self.python_callable(*self.op_args, **kwargs)
        return value if isinstance(value, PokeReturnValue) else PokeReturnValue(bool(value))


def sensor_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    return task_decorator_factory(python_callable=python_callable, multiple_outputs=False,
                                  decorated_operator_class=DecoratedSensor, **kwargs)
