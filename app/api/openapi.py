"""The OpenAPI document: FastAPI's, plus the request model of routes that parse their own body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from schemas.differentiate import DifferentiateRequest

#: Models that routes read themselves (for speed and for MessagePack), so FastAPI does not
#: see them; their schemas go into components/schemas under their own names.
SELF_PARSED: tuple[type[BaseModel], ...] = (DifferentiateRequest,)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the self-parsed request models."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for model in SELF_PARSED:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = schema
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
