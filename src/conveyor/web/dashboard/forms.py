"""What the dashboard's forms and pages share: reading a form's text fields, checking
them with the API's own request models (so a form accepts exactly what the API
accepts), a refused form's problems by field, an id from the path checked before it
reaches a service, and the message saying what a redirected change just did
(``?done=``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from conveyor.domain.errors import Conflict, InvalidInput, NotFound
from conveyor.web.routes.params import MAX_ID

FORM = "form"
"""The field name of a problem with the whole form rather than one of its fields."""

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: Mapping[str, Any]) -> Model:
    """``data`` as one of the API's request models, so a form accepts exactly what the
    API accepts; its first problem is raised as ``InvalidInput`` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else FORM
        raise InvalidInput(field, _as_problem(str(first["msg"]))) from None


def _as_problem(message: str) -> str:
    """A model's message written as the rest of a sentence (``name: string should ...``);
    a leading acronym (``URL``, ``JSON``) keeps its capitals."""
    if message[1:2].isupper():
        return message
    return message[:1].lower() + message[1:]


def text(form: FormData, name: str) -> str:
    """A text field as typed, without surrounding blanks; ``""`` when absent."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def typed(form: FormData) -> dict[str, str]:
    """What was typed into a form, to fill it in again (never a secret)."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "secret"}


def problems_of(error: InvalidInput | Conflict, conflict_field: str) -> dict[str, str]:
    """A refused form's problem by field; a ``Conflict`` is put on ``conflict_field``."""
    if isinstance(error, InvalidInput):
        return {error.field: error.problem}
    return {conflict_field: error.message}


def checked_id(kind: str, raw: int) -> int:
    """An id from the path, or ``NotFound`` (as the API's) when no row could have it."""
    if not 0 < raw <= MAX_ID:
        raise NotFound(f"{kind} {raw} does not exist")
    return raw


def done_message(request: Request, messages: Mapping[str, str]) -> str | None:
    """The message of the change just made, named by the redirect's ``?done=``."""
    return messages.get(request.query_params.get("done", ""))
