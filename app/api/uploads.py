"""ASGI middleware: each request body is read whole, promptly, before the request is served.

A client that uploads slowly must not hold what computing requests need: the body is read
here, outside ``ConcurrencyLimit``, so a request takes one of its slots only once its
body is complete. Reading is bounded in size (``max_body_bytes``: 413) and in time
(408, and the connection closed): the next bytes must come within
``body_timeout_seconds``, and after that grace the body must average at least
``min_upload_bytes_per_second`` (each such many bytes buy one more second, as in Apache's
mod_reqtimeout). 408 is the status for it (RFC 9110, 15.5.9: the server did not receive a
complete request in the time it was prepared to wait); 400 would say the request was
malformed, which it is not. A client that goes away mid-upload is not answered at all;
the access log and metrics record it as 499 (see ``app.api.observability``).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.limits import refuse_too_large, replay
from app.api.problems import problem_response
from app.errors import RequestTimeout


class _TooSlow(Exception):
    """The body did not arrive in time; ``args[0]`` names the limit that ran out."""


class _TooLarge(Exception):
    """The body is over the size limit."""


class _Gone(Exception):
    """The client disconnected before its body was complete."""


class WholeBodies:
    """Reads the body of every request that has one before passing the request on."""

    def __init__(self, app: ASGIApp, max_bytes: int, idle_seconds: float,
                 min_rate: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except _TooLarge:
            await refuse_too_large(self.max_bytes)(scope, receive, send)
            return
        except _TooSlow as slow:
            await self._refuse_slow(str(slow.args[0]), scope, receive, send)
            return
        except _Gone:
            return  # nobody to answer
        await self.app(scope, replay(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, or one of the exceptions above."""
        length = dict(scope.get("headers", [])).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            raise _TooLarge
        loop = asyncio.get_running_loop()
        start = loop.time()
        chunks: list[bytes] = []
        size = 0
        while True:
            pause = loop.time() + self.idle_seconds
            rate = start + self.idle_seconds + size / self.min_rate
            try:
                async with asyncio.timeout_at(min(pause, rate)):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow("min_upload_bytes_per_second" if rate < pause
                               else "body_timeout_seconds") from None
            if message["type"] != "http.request":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse_slow(self, limit: str, scope: Scope, receive: Receive,
                           send: Send) -> None:
        error = RequestTimeout(
            f"The request body came too slowly: the next bytes are due within "
            f"{self.idle_seconds:g} s (body_timeout_seconds), and after that at least "
            f"{self.min_rate:g} bytes a second on average (min_upload_bytes_per_second); "
            "send the body at once", limit=limit,
            limit_value=self.idle_seconds if limit == "body_timeout_seconds" else self.min_rate)
        await problem_response(error.problem(), {"Connection": "close"})(scope, receive, send)


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a Content-Length over 0, or chunks)."""
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding" or (name == b"content-length" and value.lstrip(b"0 ")):
            return True
    return False
