"""Bodies in and out: JSON (the default) or MessagePack, chosen by Content-Type and Accept.

JSON is parsed and validated in one step by pydantic's own parser (no intermediate Python
objects for FastAPI to walk), and written by orjson with NumPy arrays directly: non-finite
numbers become ``null`` (strict JSON) and the service reports them in ``nonfinite``.
MessagePack (``application/msgpack``) is the binary transport for big batches: the same
object, with arrays of float64 written natively by ormsgpack (NaN and infinities as
themselves, still reported in ``nonfinite``).
"""

from __future__ import annotations

from typing import Any

import orjson
import ormsgpack
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from app.errors import NablaError
from schemas.differentiate import DifferentiateRequest

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = (MSGPACK, "application/x-msgpack", "application/vnd.msgpack")


class UnsupportedMediaType(NablaError):
    """The body's Content-Type is neither JSON nor MessagePack."""

    status = 415
    title = "Unsupported media type"
    code = "unsupported_media_type"


def _is_msgpack(media_type: str) -> bool:
    return media_type.split(";")[0].strip().lower() in _MSGPACK_TYPES


def decode_request(body: bytes, content_type: str | None) -> DifferentiateRequest:
    """The request model from a JSON or MessagePack body; invalid input -> 400/415/422."""
    media = (content_type or JSON).split(";")[0].strip().lower()
    try:
        if _is_msgpack(media):
            try:
                data = ormsgpack.unpackb(body)
            except ormsgpack.MsgpackDecodeError as error:
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                               "msg": f"Invalid MessagePack: {error}"}]) from None
            return DifferentiateRequest.model_validate(data)
        if media != JSON and not media.endswith("+json"):
            raise UnsupportedMediaType(
                f"The body's Content-Type is {media!r}; send {JSON} or {MSGPACK}")
        return DifferentiateRequest.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_input=False)) \
            from None


def wants_msgpack(accept: str | None) -> bool:
    """Whether the client asks for MessagePack (``Accept: application/msgpack``)."""
    return accept is not None and any(_is_msgpack(part) for part in accept.split(","))


def encode_response(content: Any, msgpack: bool) -> Response:
    """The response body in the negotiated format."""
    if msgpack:
        return Response(ormsgpack.packb(content, option=ormsgpack.OPT_SERIALIZE_NUMPY),
                        media_type=MSGPACK)
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)
