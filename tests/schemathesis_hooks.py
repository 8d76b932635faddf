"""schemathesis hooks: send MessagePack bodies too, so the binary transport is fuzzed."""

from __future__ import annotations

from typing import Any

import ormsgpack
import schemathesis


@schemathesis.serializer("application/msgpack")
def msgpack_serializer(ctx: Any, value: Any) -> bytes:
    """Generated request bodies for application/msgpack, packed as MessagePack."""
    return ormsgpack.packb(value)
