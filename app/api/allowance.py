"""ASGI middleware: each API request's allowance (its deadline, from arrival) and its end.

On arrival a request gets an ``Allowance`` (``app.engine.admission``): its deadline, and
the bytes a number of its answer takes (MessagePack or JSON, from Accept). Once answered,
what it held of the bytes being produced is given back. A request still waiting when the
server's graceful shutdown runs out is cancelled by the server; it gets a 503 problem with
Retry-After here, not the server's text/plain 500.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.api.transport import wants_msgpack
from app.engine.admission import (
    ALLOWANCE,
    JSON_BYTES_PER_NUMBER,
    MSGPACK_BYTES_PER_NUMBER,
    Allowance,
)
from app.errors import Unavailable


class RequestAllowance:
    """Stamps each API request with its allowance; answers 503 if shutdown cancels it."""

    def __init__(self, app: ASGIApp, deadline_seconds: float, prefix: str = "/v1/") -> None:
        self.app = app
        self.deadline_seconds = deadline_seconds
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
        allowance = Allowance.starting_now(
            self.deadline_seconds,
            MSGPACK_BYTES_PER_NUMBER if wants_msgpack(accept) else JSON_BYTES_PER_NUMBER)
        token = ALLOWANCE.set(allowance)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if started or task is None:
                raise
            task.uncancel()  # the server cancelled it to shut down: answer, then end
            await _shutting_down(scope, receive, send)
        finally:
            allowance.release()
            ALLOWANCE.reset(token)


async def _shutting_down(scope: Scope, receive: Receive, send: Send) -> None:
    error = Unavailable("The server is shutting down and could not finish this request in "
                        "time; it was not at fault: retry it (another replica answers)",
                        code="shutting_down")
    response = problem_response(error.problem(), {"Retry-After": str(error.retry_after),
                                                  "Connection": "close"})
    await response(scope, receive, send)
