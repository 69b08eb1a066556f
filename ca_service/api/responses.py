"""Turning service views into JSON responses through the response models."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Response, current_app, json
from pydantic import BaseModel

from ca_service.context import ServiceContext


def ctx() -> ServiceContext:
    context: ServiceContext = current_app.extensions["ca_service"]
    return context


def as_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [as_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    return obj


def respond(model: type[BaseModel], obj: Any, status: int = 200, **extra: Any) -> Response:
    data = as_dict(obj)
    if extra:
        data = {**data, **extra}
    body = model.model_validate(data).model_dump(mode="json")
    return Response(json.dumps(body), status=status, mimetype="application/json")
