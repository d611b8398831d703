"""JobContext: what a running handler can see and report."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import Job

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress report waiting to be written."""

    job_id: int
    attempt: int
    fraction: float
    message: str | None


@dataclass(frozen=True, slots=True)
class Note:
    """A note waiting to be written."""

    job_id: int
    attempt: int
    text: str


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file a handler attached, written to disk, waiting to be recorded."""

    job_id: int
    attempt: int
    name: str
    size: int
    sha256: str
    path: str


Update = Progress | Note | StoredFile


class JobContext:
    """Handed to a handler that declares a ``ctx`` parameter.

    Reports (progress, notes, files) are buffered and written by the worker in
    batches, always before the attempt's result; they work the same from async
    handlers and from sync ones running in a thread.
    """

    def __init__(self, job: Job, artifact_dir: Path, report: Callable[[Update], None]) -> None:
        self.job = job
        self._artifact_dir = artifact_dir
        self._report = report
        # A plain attribute: written by the worker, read by the handler (possibly in a
        # thread); a bool assignment is atomic, and an Event per job costs a lock.
        self.cancel_reason: str | None = None

    @property
    def job_id(self) -> int:
        """The job's id."""
        return self.job.id

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1; also the fencing token of its writes."""
        return self.job.attempt

    @property
    def cancelled(self) -> bool:
        """Whether the job was cancelled, timed out or lost its lease; stop soon if so."""
        return self.cancel_reason is not None

    def cancel(self, reason: str) -> None:
        """Mark this run as cancelled (called by the worker)."""
        self.cancel_reason = reason

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far along the job is, from 0.0 to 1.0."""
        if not 0.0 <= fraction <= 1.0:
            raise InvalidInput("fraction", "must be between 0.0 and 1.0")
        self._report(Progress(self.job.id, self.attempt, float(fraction), message))

    def note(self, text: str) -> None:
        """Append a note to the job's history."""
        self._report(Note(self.job.id, self.attempt, str(text)))

    def attach(self, name: str, data: bytes | str | Path) -> StoredFile:
        """Store a file with the job: ``data`` is its bytes or a path to copy."""
        if not _ARTIFACT_NAME.match(name):
            raise InvalidInput("name", "must be 1-200 letters, digits or '_.-'")
        content = Path(data).read_bytes() if isinstance(data, Path) else data
        if isinstance(content, str):
            content = content.encode("utf-8")
        folder = self._artifact_dir / self.job.tenant_id / str(self.job.id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self.attempt}-{name}"
        target.write_bytes(content)
        stored = StoredFile(
            self.job.id,
            self.attempt,
            name,
            len(content),
            hashlib.sha256(content).hexdigest(),
            str(target),
        )
        self._report(stored)
        return stored
