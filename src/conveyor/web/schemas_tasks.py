"""Request and response bodies of ``/api/v1/tasks`` (pydantic models, in the OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.domain.tasks import MAX_DESCRIPTION_LENGTH, TaskVersion
from conveyor.web.schemas import Body


class TaskIn(Body):
    """New settings for a task. A field left out keeps its current value (for a
    task's first version: its code-declared setting, else the built-in default);
    ``timeout: null`` removes the timeout."""

    queue: str | None = Field(default=None, min_length=1, max_length=128, examples=["reports"])
    priority: int | None = Field(default=None, ge=0, le=9, description="0 highest .. 9 lowest")
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0, description="Seconds; null for none")
    immediate: bool | None = Field(
        default=None, description="Runs at once, never waiting behind the queue"
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)

    def updates(self) -> dict[str, Any]:
        """The settings the request sets (an explicit ``null`` included)."""
        return self.model_dump(exclude_unset=True)


class TaskVersionOut(BaseModel):
    """One version of a task's settings."""

    name: str
    version: int
    queue: str
    priority: int
    max_attempts: int
    timeout: float | None
    immediate: bool
    description: str
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, version: TaskVersion) -> TaskVersionOut:
        """From the domain record."""
        return cls(
            name=version.name,
            version=version.version,
            queue=version.queue,
            priority=version.priority,
            max_attempts=version.max_attempts,
            timeout=version.timeout,
            immediate=version.immediate,
            description=version.description,
            created_at=version.created_at,
            created_by=version.created_by,
        )
