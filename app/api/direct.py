"""ASGI middleware: POST /v1/differentiate answered directly, without FastAPI's router.

A warm request is a few tens of microseconds of computing; routing it through FastAPI
(matching, dependency solving, the request object, the exception and exit-stack layers)
cost as much again. This middleware sits where the response memo does, inside every
limit (body size, slots, deadline, rate limit), and answers the one hot path with the
route's own function (``app.api.routes.differentiate.answer``). Its errors go to the same
problem handlers the app installed (``app.api.problems``), looked up as Starlette's
exception middleware does; anything else is raised to the server-error layer, as from
the route. The route stays registered: the OpenAPI document comes from it.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.routes.differentiate import PATH, answer, router
from app.errors import NablaError
from app.service.pipeline import Service

#: The errors the app's problem handlers answer (others reach the server-error layer).
HANDLED = (NablaError, RequestValidationError, HTTPException)


class DirectRoute:
    """Answers POST ``path`` itself; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, service: Service, path: str = PATH) -> None:
        self.app = app
        self.service = service
        self.path = path
        # The route this path stands for: the metrics and the access log label by it.
        self.route = self.route_of(path)

    @staticmethod
    def route_of(path: str) -> Any:
        """The route of ``path`` in the router of ``app.api.routes.differentiate``."""
        return next((r for r in router.routes if getattr(r, "path", None) == path), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        headers = dict(scope["headers"])
        try:
            raw = await _body(receive)
            body, media = await answer(self.service, raw, _text(headers.get(b"content-type")),
                                       _text(headers.get(b"accept")))
        except HANDLED as error:
            response = await _problem(scope, receive, error)
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", media.encode())]})
        await send({"type": "http.response.body", "body": body})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _body(receive: Receive) -> bytes:
    """The whole body (the limits before have read it: usually one message)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _problem(scope: Scope, receive: Receive, error: Exception) -> Any:
    """The response of the app's handler for ``error`` (by the error's class hierarchy)."""
    handlers = getattr(scope.get("app"), "exception_handlers", {})
    for kind in type(error).__mro__:
        if kind in handlers:
            return await handlers[kind](Request(scope, receive), error)
    raise error
