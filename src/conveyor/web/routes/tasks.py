"""``/api/v1/tasks``: each task's versioned settings in the caller's tenant.

Jobs enqueued without options take the current version's settings and record its
number; a reprocess records the version current at that time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from conveyor.services.tasks import TaskService
from conveyor.web.auth import Caller, server_of
from conveyor.web.schemas_tasks import TaskIn, TaskVersionOut

router = APIRouter(tags=["tasks"])

TaskName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$",
        description="A task name",
    ),
]


async def task_service(request: Request, principal: Caller) -> TaskService:
    """Task settings use cases for the caller (each checks the caller's permissions)."""
    return server_of(request).tasks_for(principal)


Tasks = Annotated[TaskService, Depends(task_service)]


@router.get("/tasks", summary="List tasks with their current settings")
async def list_tasks(tasks: Tasks) -> list[TaskVersionOut]:
    """The current version of every task this tenant stores settings for, by name."""
    return [TaskVersionOut.of(version) for version in await tasks.list_tasks()]


@router.get("/tasks/{name}", summary="Get every version of a task's settings")
async def get_task(name: TaskName, tasks: Tasks) -> list[TaskVersionOut]:
    """All versions of one task's settings, newest first; 404 if it has none."""
    return [TaskVersionOut.of(version) for version in await tasks.versions(name)]


@router.put("/tasks/{name}", summary="Change a task's settings")
async def change_task(name: TaskName, body: TaskIn, tasks: Tasks) -> TaskVersionOut:
    """Store new settings as the task's next version (owners only). Jobs enqueued
    from now on take them as defaults; a change that changes nothing makes no
    version and returns the current one."""
    return TaskVersionOut.of(await tasks.change(name, body.updates()))
