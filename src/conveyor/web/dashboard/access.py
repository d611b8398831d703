"""Who may see a page: FastAPI dependencies for the signed-in viewer and checked forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from conveyor.domain.accounts import Scope
from conveyor.domain.errors import PermissionDenied
from conveyor.services.jobs import JobService
from conveyor.web.auth import PRINCIPAL_KEY
from conveyor.web.dashboard.session import CSRF_FIELD, Viewer, check_csrf, sessions_of


async def signed_in(request: Request) -> Viewer:
    """The viewer of every dashboard page; ``SignInRequired`` sends others to /login."""
    viewer = await sessions_of(request).viewer(request)
    request.scope[PRINCIPAL_KEY] = viewer.principal  # the audit trail names the viewer
    request.state.viewer = viewer
    return viewer


SignedIn = Annotated[Viewer, Depends(signed_in)]


async def staff(viewer: SignedIn) -> Viewer:
    """A viewer who is not an agent (agents see only the Jobs pages)."""
    if viewer.is_agent:
        raise PermissionDenied("agents see only the jobs assigned to them")
    return viewer


Staff = Annotated[Viewer, Depends(staff)]


async def writer(viewer: SignedIn) -> Viewer:
    """A viewer who may change jobs and queues (``jobs:write``), as the API requires."""
    viewer.principal.require(Scope.JOBS_WRITE)
    return viewer


Writer = Annotated[Viewer, Depends(writer)]


async def owner(viewer: SignedIn) -> Viewer:
    """A viewer who may change the tenant's settings (``admin``), as the API requires."""
    viewer.principal.require(Scope.ADMIN)
    return viewer


Owner = Annotated[Viewer, Depends(owner)]


async def overseer(viewer: SignedIn) -> Viewer:
    """An owner of the tenant, or a platform admin (who may see every tenant's usage)."""
    if not viewer.is_platform_admin:
        viewer.principal.require(Scope.ADMIN)
    return viewer


Overseer = Annotated[Viewer, Depends(overseer)]


async def platform_admin(viewer: SignedIn) -> Viewer:
    """A platform admin (every tenant)."""
    viewer.principal.require_admin()
    return viewer


PlatformAdmin = Annotated[Viewer, Depends(platform_admin)]


async def checked_form(request: Request, viewer: SignedIn) -> FormData:
    """A POSTed form from this site carrying this session's CSRF token."""
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD), viewer.csrf)
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def jobs_of(request: Request, viewer: Viewer) -> JobService:
    """The job use cases as the viewer may use them."""
    service: JobService = request.app.state.server.jobs_for(viewer.principal)
    return service
