"""schemathesis hooks: send MessagePack bodies too, so the binary transport is fuzzed."""

from __future__ import annotations

from typing import Any

import ormsgpack
import schemathesis


def _beyond_64_bits(value: Any) -> Any:
    """An integer MessagePack cannot carry goes as a client would have to send it: a float,
    or text beyond the float range (either is the server's to refuse)."""
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return str(value)
    raise TypeError(f"cannot pack {type(value).__name__}")


@schemathesis.serializer("application/msgpack")
def msgpack_serializer(ctx: Any, value: Any) -> bytes:
    """Generated request bodies for application/msgpack, packed as MessagePack."""
    return ormsgpack.packb(value, default=_beyond_64_bits,
                           option=ormsgpack.OPT_PASSTHROUGH_BIG_INT)
