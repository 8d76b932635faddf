"""schemathesis hooks: send MessagePack bodies too, so the binary transport is fuzzed."""

from __future__ import annotations

import math
from typing import Any

import ormsgpack
import schemathesis


def _big_int(number: int) -> float:
    """An integer beyond 64 bits, which MessagePack cannot carry, as the nearest float
    (infinite past float64's range): what a MessagePack client would have to send."""
    return float(number) if abs(number) < 2**1023 else math.copysign(math.inf, number)


@schemathesis.serializer("application/msgpack")
def msgpack_serializer(ctx: Any, value: Any) -> bytes:
    """Generated request bodies for application/msgpack, packed as MessagePack."""
    return ormsgpack.packb(value, default=_big_int, option=ormsgpack.OPT_PASSTHROUGH_BIG_INT)
