"""The built-in tasks' names and declared settings, and who may create shell jobs.

Standard library and domain only: the job service imports it for its enqueue-time
checks. The handlers are :mod:`conveyor.builtins.http` and
:mod:`conveyor.builtins.shell`; :mod:`conveyor.builtins.registration` adds them to
an app.

Each built-in task runs on a queue of its own name (``http``, ``shell``), so a
worker that knows only the built-ins (the one ``conveyor serve`` runs when it has
no ``--worker`` app) never claims, and fails, the jobs of other tasks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import InvalidInput, PermissionDenied
from conveyor.domain.retry import Backoff
from conveyor.domain.tasks import TaskSettings

HTTP_TASK = "http"
SHELL_TASK = "shell"

HTTP_SETTINGS = TaskSettings(
    name=HTTP_TASK, queue=HTTP_TASK, max_attempts=3, backoff=Backoff(base=5.0)
)
SHELL_SETTINGS = TaskSettings(name=SHELL_TASK, queue=SHELL_TASK, max_attempts=1)
BUILTIN_SETTINGS: Mapping[str, TaskSettings] = {
    settings.name: settings for settings in (HTTP_SETTINGS, SHELL_SETTINGS)
}

SHELL_SWITCH = "CONVEYOR_SHELL_TASKS"
SHELL_DISABLED = f"shell tasks are disabled; the operator enables them with {SHELL_SWITCH}=true"
SHELL_FORBIDDEN = "only tenant owners, admin API keys and platform admins may create shell jobs"

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})


def builtin_settings(name: str) -> TaskSettings | None:
    """The declared settings of built-in task ``name``, if it is one."""
    return BUILTIN_SETTINGS.get(name)


def shell_tasks_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``CONVEYOR_SHELL_TASKS`` turns shell tasks on (unset: off).

    Accepts the words the server's settings accept (``true``/``false``, ``1``/``0``,
    ``yes``/``no``, ``on``/``off``).
    """
    value = environ.get(SHELL_SWITCH, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(SHELL_SWITCH, f"must be true or false, not {value!r}")


def may_run_shell(principal: Principal) -> bool:
    """Whether ``principal`` may create shell jobs: a platform admin, a tenant owner,
    or an API key with the ``admin`` scope (members and agents may not)."""
    return principal.is_admin or Scope.ADMIN in principal.scopes


def check_shell_job(task: object, *, enabled: bool, allowed: bool) -> None:
    """Refuse a ``shell`` job when shell tasks are off (``InvalidInput`` on ``task``)
    or when the caller may not create one (``PermissionDenied``)."""
    if task != SHELL_TASK:
        return
    if not enabled:
        raise InvalidInput("task", SHELL_DISABLED)
    if not allowed:
        raise PermissionDenied(SHELL_FORBIDDEN)
