"""MessagePack bodies read strictly: exactly one object, and no map that gives a key twice.

ormsgpack decodes the first object of a buffer and ignores any bytes after it, and keeps
the last value of a repeated key: a body whose meaning depends on which copy wins, or that
carries bytes nobody reads, is refused instead (400), as JSON refuses trailing text.
``scan`` walks the encoded bytes without building objects, with an explicit stack (deep
nesting cannot exhaust Python's), skipping arrays of same-sized numbers in one step.
"""

from __future__ import annotations

import numpy as np

ATOM, STR, ARRAY, MAP = range(4)
# Lead byte -> total size of a fixed-size object (nil, booleans, numbers, fixext).
_FIXED = {0xc0: 1, 0xc2: 1, 0xc3: 1, 0xca: 5, 0xcb: 9, 0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9,
          0xd0: 2, 0xd1: 3, 0xd2: 5, 0xd3: 9, 0xd4: 3, 0xd5: 4, 0xd6: 6, 0xd7: 10, 0xd8: 18,
          **dict.fromkeys(range(0x00, 0x80), 1), **dict.fromkeys(range(0xe0, 0x100), 1)}
# Lead byte -> width of the length that follows it.
_SIZED = {0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4}  # bin, str
_EXT = {0xc7: 1, 0xc8: 2, 0xc9: 4}
_ARRAY = {0xdc: 2, 0xdd: 4}
_MAP = {0xde: 2, 0xdf: 4}
_ONE_BYTE = np.array([_FIXED.get(b) == 1 for b in range(256)])


class Malformed(ValueError):
    """The bytes are not one MessagePack object with distinct keys; says why."""


def _length(data: bytes, pos: int, width: int) -> int:
    if pos + width > len(data):
        raise IndexError(pos)
    return int.from_bytes(data[pos:pos + width], "big")


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    """The object at ``pos``: its kind, where its payload starts (for an atom or a string:
    where it ends), and its length (strings: bytes; arrays: items; maps: pairs)."""
    lead = data[pos]
    if lead in _FIXED:
        return ATOM, pos + _FIXED[lead], 0
    if 0xa0 <= lead <= 0xbf:
        return STR, pos + 1, lead & 0x1f
    if 0x90 <= lead <= 0x9f:
        return ARRAY, pos + 1, lead & 0x0f
    if 0x80 <= lead <= 0x8f:
        return MAP, pos + 1, lead & 0x0f
    for table, kind in ((_SIZED, STR), (_ARRAY, ARRAY), (_MAP, MAP)):
        if lead in table:
            width = table[lead]
            return kind, pos + 1 + width, _length(data, pos + 1, width)
    if lead in _EXT:
        width = _EXT[lead]
        return ATOM, pos + 2 + width + _length(data, pos + 1, width), 0
    raise Malformed(f"the byte 0x{lead:02x} at offset {pos} starts no MessagePack object")


def _skip_numbers(data: bytes, pos: int, count: int) -> int | None:
    """The end of ``count`` same-sized numbers from ``pos``, or None if they are not."""
    size = _FIXED.get(data[pos]) if pos < len(data) else None
    if size is None or pos + size * count > len(data):
        return None
    leads = np.frombuffer(data, np.uint8, count=size * count, offset=pos)[::size]
    same = _ONE_BYTE[leads].all() if size == 1 else (leads == data[pos]).all()
    return pos + size * count if same else None


def scan(data: bytes) -> int:
    """Where the first object of ``data`` ends; ``Malformed`` for a key given twice."""
    stack: list[tuple[int, set[bytes] | None]] = []
    pos, remaining, keys = 0, 1, None
    while True:
        while remaining == 0:
            if not stack:
                return pos
            remaining, keys = stack.pop()
        is_key = keys is not None and remaining % 2 == 0
        remaining -= 1
        kind, start, length = _head(data, pos)
        if kind == ATOM:
            pos = start
        elif kind == STR:
            pos = start + length
            if is_key and keys is not None:
                _distinct(keys, data[start:pos])
        else:
            skipped = _skip_numbers(data, start, length) if kind == ARRAY else None
            if skipped is not None:
                pos = skipped
                continue
            stack.append((remaining, keys))
            pos, remaining, keys = start, length * (2 if kind == MAP else 1), (
                set() if kind == MAP else None)
        if pos > len(data):
            raise IndexError(pos)


def _distinct(keys: set[bytes], key: bytes) -> None:
    if key in keys:
        shown = key[:64].decode("utf-8", "replace")
        raise Malformed(f"the key {shown!r} appears twice in one map; give each key once")
    keys.add(key)


def check_one_object(data: bytes) -> None:
    """Refuse (``Malformed``) bytes after the first object, or a key given twice."""
    try:
        end = scan(data)
    except IndexError:
        raise Malformed("the body ends in the middle of an object") from None
    if end != len(data):
        raise Malformed(f"{len(data) - end} bytes follow the MessagePack object (from offset "
                        f"{end}); send exactly one object")
