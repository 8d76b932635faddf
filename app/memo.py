"""A bounded memo of whole responses: nabla is a pure function of the request body.

An identical request (same bytes, same Content-Type and Accept) gets the bytes computed
the first time, without decoding, validating or evaluating again: notebooks re-run cells,
dashboards poll, plots redraw. Only successful answers of at most ``max_item_bytes`` are
kept, in an LRU of at most ``max_bytes`` in all; it lives on the event loop (no lock).
"""

from __future__ import annotations

from collections import OrderedDict

Key = tuple[bytes, str, str]


class ResponseMemo:
    """An LRU of response bodies bounded by their total size."""

    def __init__(self, max_bytes: int, max_item_bytes: int = 64 * 1024) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self._items: OrderedDict[Key, tuple[bytes, str]] = OrderedDict()
        self._size = 0

    def get(self, key: Key) -> tuple[bytes, str] | None:
        """The body and media type answered before for ``key``, if kept."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Key, body: bytes, media_type: str) -> None:
        """Keep a successful answer, evicting the least recently used beyond the bound."""
        size = len(body) + len(key[0])
        if size > self.max_item_bytes or key in self._items:
            return
        self._items[key] = (body, media_type)
        self._size += size
        while self._size > self.max_bytes and self._items:
            old_key, (old_body, _) = self._items.popitem(last=False)
            self._size -= len(old_body) + len(old_key[0])

    def __len__(self) -> int:
        return len(self._items)
