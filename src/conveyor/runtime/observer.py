"""What a worker reports as it works: claims and runs, with their durations.

The server's metrics implement it for its embedded worker; the default does nothing.
"""

from __future__ import annotations

from typing import Protocol


class WorkerObserver(Protocol):
    """Told about every claim and every finished run."""

    def claimed(self, queue: str, count: int, seconds: float) -> None:
        """A claim of ``count`` jobs from ``queue`` took ``seconds``."""

    def ran(self, task: str, outcome: str, seconds: float) -> None:
        """A job of ``task`` ran for ``seconds`` and ended as ``outcome``."""


class NoObserver:
    """Reports nothing."""

    def claimed(self, queue: str, count: int, seconds: float) -> None:
        """Ignore a claim."""

    def ran(self, task: str, outcome: str, seconds: float) -> None:
        """Ignore a run."""
