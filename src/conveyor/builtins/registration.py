"""Adding the built-in tasks to a task registry: ``http`` always, ``shell`` when enabled."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from conveyor.builtins.catalog import HTTP_SETTINGS, SHELL_SETTINGS
from conveyor.builtins.http import HttpTask
from conveyor.builtins.shell import run_shell
from conveyor.net.policy import OutboundPolicy
from conveyor.runtime.registry import TaskRegistry

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver


class BuiltinTasks:
    """The built-in tasks of one registry.

    ``http_allow`` lists the networks and host names the ``http`` task may call
    although they are not public; ``shell_tasks`` registers the ``shell`` task.
    """

    def __init__(
        self,
        registry: TaskRegistry,
        *,
        http_allow: Iterable[str] = (),
        shell_tasks: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.registry = registry
        self.http = HttpTask(OutboundPolicy.from_entries(http_allow), resolver)
        registry.add(HTTP_SETTINGS, self.http.run)
        self.shell = False
        if shell_tasks:
            self.enable_shell()

    def allow(self, entries: Iterable[str]) -> None:
        """Let the ``http`` task also call these networks and host names."""
        self.http.policy = self.http.policy.extended(entries)

    def enable_shell(self) -> None:
        """Register the ``shell`` task (once)."""
        if not self.shell:
            self.registry.add(SHELL_SETTINGS, run_shell)
            self.shell = True
