"""Per-request operations: a request id, one JSON access-log line, and the request metrics.

A client that disconnects before its answer (mid-upload, say) is no fault of the server:
it is recorded with the status 499 (nginx's "client closed request"), never sent, and
logged as an ordinary access-log line, not as an error.

``install`` wires it into an application: logging, the metrics registry, this middleware
(outermost, so refusals such as 413 are counted too) and the ``/metrics`` route.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from typing import Any

from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.routes import metrics as metrics_route
from app.config import Settings
from app.ops import logs
from app.ops.metrics import CacheStats, Metrics

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
# Ids from upstream proxies are kept when they look like ids; anything else is replaced,
# so a header cannot inject text into the logs.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"
# The status recorded (never sent) when the client left before its answer: nginx's 499.
CLIENT_CLOSED_REQUEST = 499
# New ids: a random prefix per process and a counter (unique without a syscall per request).
_ID_PREFIX = secrets.token_hex(12)
_ID_COUNTER = itertools.count(1)
access_log = logging.getLogger("nabla.access")


def request_id_of(scope: Scope) -> str:
    """The request's ``X-Request-ID`` if it is a plausible id, else a new random one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(text):
                return text
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope`` (``/v1/differentiate``).

    Call it after the app has run: FastAPI records the matched route in the scope. Other
    routes (the docs pages, mounts) are matched here. Requests refused before routing
    (413) and unknown paths are ``<unmatched>``: labels never hold raw paths, so clients
    cannot grow the metrics without bound.
    """
    served_by = getattr(scope.get("route"), "path", None)
    if isinstance(served_by, str):
        return served_by
    partial = None
    for candidate in getattr(scope.get("app"), "routes", ()):
        path = getattr(candidate, "path", None)
        if not isinstance(path, str):
            continue
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return path
        if match == Match.PARTIAL and partial is None:
            partial = path
    return partial or UNMATCHED_ROUTE


class _Exchange:
    """One request's receive and send, watched: the status sent, and whether the client left
    before its answer."""

    def __init__(self, receive: Receive, send: Send, request_id: str) -> None:
        self._receive, self._send, self.request_id = receive, send, request_id
        self.status = 500
        self.answered = self.gone = False

    async def receive(self) -> Message:
        """The client's next message, noting a disconnect."""
        message = await self._receive()
        self.gone = self.gone or message["type"] == "http.disconnect"
        return message

    async def send(self, message: Message) -> None:
        """Send, noting the status and adding the request id."""
        if message["type"] == "http.response.start":
            self.status, self.answered = message["status"], True
            message["headers"] = [*message.get("headers", ()), (
                _REQUEST_ID_NAME, self.request_id.encode("latin-1"))]
        await self._send(message)

    @property
    def outcome(self) -> int:
        """The status to record: the one sent, or 499 when the client left unanswered."""
        return CLIENT_CLOSED_REQUEST if self.gone and not self.answered else self.status


class RequestObservability:
    """ASGI middleware: request id in and out, metrics and one log line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        # Not reset afterwards: the server runs each request in its own task, and the outer
        # error handler's log line should still carry the id.
        logs.REQUEST_ID.set(request_id)
        method = scope["method"]
        exchange = _Exchange(receive, send, request_id)
        in_progress = self.metrics.in_progress_of(method)
        in_progress.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except ClientDisconnect:
            if exchange.answered:
                raise
            exchange.gone = True  # the client left mid-upload: no answer, no error
        finally:
            seconds = time.perf_counter() - start
            in_progress.dec()
            route, status = route_template(scope), exchange.outcome
            self.metrics.observe(method, route, status, seconds)
            logs.info_line(access_log, "request", _access_fields(
                scope, request_id, method, route, status, seconds))


def _access_fields(scope: Scope, request_id: str, method: str, route: str, status: int,
                   seconds: float) -> dict[str, Any]:
    return {"request_id": request_id, "method": method, "route": route,
            "path": scope.get("path", ""), "status": status, "duration_s": round(seconds, 6)}


def install(app: FastAPI, settings: Settings, cache: CacheStats) -> None:
    """Logs, metrics, the request middleware and ``/metrics`` for ``app``."""
    logs.configure(settings.log_level, settings.log_format)
    app.state.metrics = Metrics(cache)
    app.add_middleware(RequestObservability, metrics=app.state.metrics)
    app.include_router(metrics_route.router)
