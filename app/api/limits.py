"""ASGI middleware: body size (413) and concurrent API requests (503), checked up front."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.errors import PayloadTooLarge, Unavailable


class BodySizeLimit:
    """Answers 413 when Content-Length, or the bytes of a chunked body, exceed ``max_bytes``.

    With a Content-Length the server enforces the framing, so the header is checked alone.
    Without one (chunked), the body is read here, up to the limit, and replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await refuse_too_large(self.max_bytes)(scope, receive, send)


def refuse_too_large(max_bytes: int) -> Response:
    """The 413 problem for a body over ``max_bytes``; the connection is closed after it."""
    error = PayloadTooLarge(
        f"The request body is larger than the limit max_body_bytes = {max_bytes} "
        "bytes; send fewer points, or split the request",
        limit="max_body_bytes", limit_value=max_bytes)
    return problem_response(error.problem(), {"Connection": "close"})


class ConcurrencyLimit:
    """Answers 503 with Retry-After when ``max_requests`` API requests are already running.

    Probes, docs and pages are not counted, so /livez and /readyz answer under any load.
    """

    def __init__(self, app: ASGIApp, max_requests: int, prefix: str = "/v1/") -> None:
        self.app = app
        self.max_requests = max_requests
        self.prefix = prefix
        self.running = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.running >= self.max_requests:
            error = Unavailable(
                f"The server is computing {self.running} requests, its limit "
                "(max_concurrent_requests); retry after a second", code="overloaded")
            await problem_response(error.problem(), {"Retry-After": str(error.retry_after)})(
                scope, receive, send)
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1


def replay(body: bytes, receive: Receive, more: bool = False) -> Receive:
    """A receive that gives ``body`` first, then (if ``more``) the rest of the stream."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed
