"""A bounded memo of whole responses: nabla is a pure function of the request body.

An identical request (same path, bytes, Content-Type and Accept) gets the bytes computed
before, without routing, decoding, validating or evaluating again: notebooks re-run
cells, dashboards poll, plots redraw. ``ResponseMemo`` is an ASGI middleware in front of
the router for the POST paths it is given; only successful answers of at most
``max_item_bytes`` are kept, in an LRU of at most ``max_bytes`` in all (``cachetools``).

An answer is kept the second time its request is answered, not the first: most requests
are never repeated (a new point each), and keeping each one (copied, sized, inserted, an
older one evicted) cost a computed request ~15 % of its time. The first time, only the
request's hash is noted, in a FIFO of ``seen`` hashes (a doorkeeper, as TinyLFU's).

A body the memo does not remember goes to ``hot`` first (``app.api.hot``: a warm one-point
request answered where it is read), then to the app.

An entry is sized by what it holds in memory (``entry_bytes``): the key and its bytes, the
headers, the body, and the LRU's own bookkeeping. The body is copied to its exact size
first: orjson's output keeps the 4 KiB buffer it was written into, so a 100-byte answer
kept as it is held 4 KiB (a 32 MiB memo grew to gigabytes). It lives on the event loop (no
lock).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from cachetools import LRUCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.limits import replay
from app.engine.caches import Doorkeeper

Key = tuple[str, bytes, bytes, bytes]
Headers = tuple[tuple[bytes, bytes], ...]
#: ``hot(body, content_type, accept)``: a JSON answer, or None for the app to answer.
Hot = Callable[[bytes, bytes | None, bytes | None], bytes | None]
#: The LRU's bookkeeping for one entry: a slot in each of its two dicts (value, size) and
#: in its order (an OrderedDict); tracemalloc measures 134 to 201 bytes as the dicts grow.
ENTRY_OVERHEAD = 200


class Stored(NamedTuple):
    """A remembered answer, and the bytes it holds in memory (its key's included)."""

    headers: Headers
    body: bytes
    size: int


def entry_bytes(key: Key, headers: Headers, body: bytes) -> int:
    """What one entry holds in memory: every object of its key and its value (the path is
    shared with the memo's own), and the LRU's bookkeeping."""

    def objects() -> Iterator[object]:
        yield from (key, key[1], key[2], key[3], headers, body, 2**40)  # 2**40: the size
        for pair in headers:
            yield from (pair, *pair)

    return ENTRY_OVERHEAD + sys.getsizeof(Stored((), b"", 0)) + sum(map(sys.getsizeof,
                                                                        objects()))


class ResponseMemo:
    """ASGI middleware: answers repeated identical POSTs from an LRU bounded by size."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: tuple[str, ...],
                 max_item_bytes: int = 64 * 1024, hot: Hot | None = None,
                 routes: Mapping[str, Any] | None = None, seen: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.paths = paths
        self.hot = hot
        self.routes = routes or {}  # by path: what the metrics and the access log label by
        self._items: LRUCache[Key, Stored] = LRUCache(max(0, max_bytes),
                                                      getsizeof=lambda stored: stored.size)
        # An int and its slot, ~100 bytes each: 1/1000 of the memo's bytes, 1,000 at least.
        self._seen = Doorkeeper(max(1000, max_bytes // 1000) if seen is None else seen)

    def __len__(self) -> int:
        return len(self._items)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if ((self.max_bytes <= 0 and self.hot is None) or scope["type"] != "http"
                or scope["method"] != "POST" or scope["path"] not in self.paths):
            await self.app(scope, receive, send)
            return
        body, more = await _read_small(receive, self.max_item_bytes)
        if more:  # too big to remember: pass it on untouched
            await self.app(scope, replay(body, receive, True), send)
            return
        headers = dict(scope.get("headers", []))
        path = next(p for p in self.paths if p == scope["path"])  # one shared object
        if path in self.routes:
            scope["route"] = self.routes[path]
        content_type, accept = headers.get(b"content-type"), headers.get(b"accept")
        key = (path, body, content_type or b"", accept or b"")
        stored = self._items.get(key) if self.max_bytes > 0 else None
        if stored is not None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": list(stored.headers)})
            await send({"type": "http.response.body", "body": stored.body})
            return
        answer = None if self.hot is None else self.hot(body, content_type, accept)
        if answer is not None:
            kept = [(b"content-length", str(len(answer)).encode()),
                    (b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": kept})
            await send({"type": "http.response.body", "body": answer})
            self._offer(key, kept, answer)
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
                    self._offer(key, list(start.get("headers", [])), b"".join(parts))
            await send(message)

        return record

    def _offer(self, key: Key, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Keep the answer if its request was answered before (its hash was seen); else note
        the hash, the oldest going past ``seen``."""
        if (self.max_bytes <= 0 or len(body) + len(key[1]) > self.max_item_bytes
                or key in self._items):
            return
        if self._seen.seen_before(hash(key)):
            self._keep(key, headers, body)

    def _keep(self, key: Key, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        # The request id is per request: a remembered answer must not repeat it.
        kept = tuple((k, v) for k, v in headers if k.lower() != b"x-request-id")
        key = (key[0], _exact(key[1]), key[2], key[3])
        body = _exact(body)
        size = entry_bytes(key, kept, body)
        if size <= self.max_bytes:
            self._items[key] = Stored(kept, body, size)  # the least recently used go


def _exact(data: bytes) -> bytes:
    """A copy of ``data`` that holds its own length only (not a bigger buffer it came in)."""
    return memoryview(data).tobytes()


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
