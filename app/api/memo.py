"""A bounded memo of whole responses: nabla is a pure function of the request body.

An identical request (same path, bytes, Content-Type and Accept) gets the bytes computed
the first time, without routing, decoding, validating or evaluating again: notebooks
re-run cells, dashboards poll, plots redraw. ``ResponseMemo`` is an ASGI middleware in
front of the router for the POST paths it is given; only successful answers of at most
``max_item_bytes`` are kept, in an LRU of at most ``max_bytes`` in all (``cachetools``,
sized by each answer's bytes plus its request's). It lives on the event loop (no lock).
"""

from __future__ import annotations

from typing import NamedTuple

from cachetools import LRUCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.limits import replay

Key = tuple[str, bytes, bytes, bytes]


class Stored(NamedTuple):
    """A remembered answer, and the bytes it holds (the request body's included)."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    size: int


class ResponseMemo:
    """ASGI middleware: answers repeated identical POSTs from an LRU bounded by size."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: tuple[str, ...],
                 max_item_bytes: int = 64 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.paths = paths
        self._items: LRUCache[Key, Stored] = LRUCache(max(0, max_bytes),
                                                      getsizeof=lambda stored: stored.size)

    def __len__(self) -> int:
        return len(self._items)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.max_bytes <= 0 or scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in self.paths):
            await self.app(scope, receive, send)
            return
        body, more = await _read_small(receive, self.max_item_bytes)
        if more:  # too big to remember: pass it on untouched
            await self.app(scope, replay(body, receive, True), send)
            return
        headers = dict(scope.get("headers", []))
        key = (scope["path"], body, headers.get(b"content-type", b""),
               headers.get(b"accept", b""))
        stored = self._items.get(key)
        if stored is not None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": stored.headers})
            await send({"type": "http.response.body", "body": stored.body})
            return
        await self.app(scope, replay(body, receive), self._recorder(key, send))

    def _recorder(self, key: Key, send: Send) -> Send:
        start: Message | None = None
        parts: list[bytes] = []

        async def record(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and start is not None:
                parts.append(message.get("body", b""))
                if not message.get("more_body", False) and start["status"] == 200:
                    self._keep(key, list(start.get("headers", [])), b"".join(parts))
            await send(message)

        return record

    def _keep(self, key: Key, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        size = len(body) + len(key[1])
        if size > min(self.max_item_bytes, self.max_bytes) or key in self._items:
            return
        # The request id is per request: a remembered answer must not repeat it.
        headers = [(k, v) for k, v in headers if k.lower() != b"x-request-id"]
        self._items[key] = Stored(headers, body, size)  # the least recently used go


async def _read_small(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The body, read up to just over ``limit``; True when there is more than that."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > limit:
            return b"".join(chunks), True
