"""uvicorn's HTTP protocols with a header timeout, against slowloris.

A connection must deliver a request's complete headers within ``header_timeout_seconds``
of its opening, or of the previous answer. uvicorn has no such timeout of its own: its
keep-alive timer runs only between requests and stops at the first byte, so a client that
sends its headers a byte at a time holds a connection forever, and so does a new
connection that sends nothing. ASGI middleware cannot help, since the app is called only
once the headers are complete; the body is timed there (``app.api.uploads``).

On expiry, a connection that sent part of a request gets a 408 problem (RFC 9110, 15.5.9:
the server did not receive a complete request in the time it was prepared to wait) and is
closed; one that sent nothing is closed without a word, as there is no request to answer.
``nabla serve`` selects it (``--http app.ops.header_timeout:HttpToolsProtocol`` with the
plain uvicorn command).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol

from app.config import get_settings
from app.errors import RequestTimeout


def timeout_response(seconds: float) -> bytes:
    """The whole 408 answer, written straight to the socket (there is no request cycle)."""
    error = RequestTimeout(
        f"The request's headers did not arrive within {seconds:g} s "
        "(header_timeout_seconds); send the whole request at once", limit_value=seconds,
        limit="header_timeout_seconds")
    body = orjson.dumps(error.problem())
    head = ("HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class HeaderDeadline(asyncio.Protocol):
    """Mixin for a uvicorn HTTP protocol: closes a connection whose headers are late."""

    cycle: Any  # uvicorn's request cycle: a new one once a request's headers are complete
    transport: Any
    _timer: asyncio.TimerHandle | None = None
    _waiting_for: Any = None  # the cycle that was current when the clock started
    _partial = False  # bytes arrived since the clock started

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the clock: the first request's headers are due."""
        super().connection_made(transport)
        self._start_clock()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; stop the clock once a request's headers are complete."""
        self._partial = True
        super().data_received(data)
        if self._timer is not None and self.cycle is not self._waiting_for:
            self._stop_clock()

    def on_response_complete(self) -> None:
        """After an answer, the next request's headers are due (unless one is pipelined)."""
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._start_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock with the connection."""
        self._stop_clock()
        super().connection_lost(exc)

    def _start_clock(self) -> None:
        self._stop_clock()
        seconds = get_settings().header_timeout_seconds
        self._waiting_for, self._partial = self.cycle, False
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire, seconds)

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, seconds: float) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._partial:
            self.transport.write(timeout_response(seconds))
        self.transport.close()


class HttpToolsProtocol(HeaderDeadline, _HttpToolsProtocol):
    """uvicorn's httptools protocol (its default) with the header timeout."""


class H11Protocol(HeaderDeadline, _H11Protocol):
    """uvicorn's h11 protocol with the header timeout."""
