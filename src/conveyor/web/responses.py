"""Responses the hot routes build themselves."""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel


def json_response(model: BaseModel, status: int = 200) -> Response:
    """A model already known to be valid, serialized straight to JSON.

    FastAPI would otherwise validate it again against the response model; the hot
    job routes skip that (their OpenAPI still names the model, and the schemathesis
    test checks what they send against it).
    """
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")
