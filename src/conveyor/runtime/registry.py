"""Task registry: the handlers a worker can run, by task name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.tasks import TaskSettings

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class RegisteredTask:
    """A task's settings and the function that runs it."""

    settings: TaskSettings
    handler: Handler
    is_async: bool
    wants_context: bool

    @property
    def name(self) -> str:
        """The task's name."""
        return self.settings.name


class TaskRegistry:
    """Task names to handlers; rejects bad declarations at once."""

    def __init__(self) -> None:
        self._tasks: dict[str, RegisteredTask] = {}

    def add(self, settings: TaskSettings, handler: Handler) -> RegisteredTask:
        """Register ``handler`` for ``settings.name``."""
        if settings.name in self._tasks:
            raise InvalidInput("name", f"task {settings.name!r} is already registered")
        if not callable(handler):
            raise InvalidInput("handler", "must be callable")
        parameters = inspect.signature(handler).parameters
        task = RegisteredTask(
            settings=settings,
            handler=handler,
            is_async=inspect.iscoroutinefunction(handler),
            wants_context="ctx" in parameters,
        )
        self._tasks[settings.name] = task
        return task

    def get(self, name: str) -> RegisteredTask | None:
        """The task called ``name``, if registered."""
        return self._tasks.get(name)

    def name_of(self, handler: Handler) -> str | None:
        """The name ``handler`` is registered under, if it is."""
        for task in self._tasks.values():
            if task.handler is handler:
                return task.name
        return None

    def settings(self, name: str) -> TaskSettings | None:
        """The settings of task ``name``, if registered."""
        task = self._tasks.get(name)
        return task.settings if task else None

    def queues(self) -> list[str]:
        """The queues the registered tasks run on, sorted."""
        return sorted({t.settings.queue for t in self._tasks.values()})

    def names(self) -> list[str]:
        """Registered task names, sorted."""
        return sorted(self._tasks)
