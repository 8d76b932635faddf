"""A JSON response rendered by orjson, with NumPy arrays written directly (NaN -> null)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class ArrayJSONResponse(Response):
    """Strict JSON (RFC 8259): non-finite numbers become ``null``; callers report them."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
