"""Health, readiness and metrics: for load balancers and Prometheus (no sign-in)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from conveyor.domain.errors import ConveyorError
from conveyor.web.auth import server_of
from conveyor.web.problems import problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Is the process alive")
async def healthz() -> dict[str, str]:
    """Always ``ok`` while the server runs."""
    return {"status": "ok"}


@router.get("/readyz", summary="Can it serve", response_model=None)
async def readyz(request: Request) -> dict[str, str | int] | Response:
    """``ready`` when the database answers with the schema this version needs; 503 if not."""
    store = server_of(request).store
    try:
        await store.check_schema()
        version = await store.schema_version()
    except ConveyorError as exc:
        return problem(503, exc.message)
    return {"status": "ready", "schema_version": version}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Job counts by tenant, queue and state, and HTTP latency by route."""
    server = server_of(request)
    body = await server.metrics.render(server.store, server.accounts_store)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
