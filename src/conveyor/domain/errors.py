"""The one error tree of Conveyor.

Every error a caller can act on is a ``ConveyorError``. Only the edges translate
them: the CLI into a one-line message and exit code 2, the web layer into
problem+json. The default message of each class is its docstring's first line.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Something went wrong in Conveyor."""

    def __init__(self, message: str | None = None) -> None:
        doc = (type(self).__doc__ or "").strip().splitlines()
        super().__init__(message or (doc[0] if doc else type(self).__name__))

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0])


class NotFound(ConveyorError):
    """The requested resource does not exist."""


class Conflict(ConveyorError):
    """The resource changed in a way that forbids this operation."""


class IllegalTransition(Conflict):
    """A job cannot move between these two states."""

    def __init__(self, from_state: str, to_state: str, job_id: int | None = None) -> None:
        self.from_state = from_state
        self.to_state = to_state
        self.job_id = job_id
        who = f"job {job_id}" if job_id is not None else "a job"
        super().__init__(f"{who} cannot go from '{from_state}' to '{to_state}'")


class InvalidInput(ConveyorError):
    """The input is not valid."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class PermissionDenied(ConveyorError):
    """The caller may not do this."""


class StoreUnavailable(ConveyorError):
    """The database cannot be reached."""


class SchemaOutdated(ConveyorError):
    """The database schema is older than this version of Conveyor needs."""

    def __init__(self, current: int, required: int) -> None:
        self.current = current
        self.required = required
        super().__init__(
            f"the database schema is at version {current} but this Conveyor needs {required}: "
            "run `conveyor db upgrade` first"
        )


class LeaseLost(Conflict):
    """The attempt no longer holds the job's lease (it was rescued, cancelled or finished)."""
