"""Bodies in and out: JSON (the default) or MessagePack, chosen by Content-Type and Accept.

JSON is parsed and validated in one step by pydantic's own parser (no intermediate Python
objects for FastAPI to walk), and written by orjson with NumPy arrays directly: non-finite
numbers become ``null`` (strict JSON) and the service reports them in ``nonfinite``.
MessagePack (``application/msgpack``) is the binary transport for big batches: the same
object, with arrays of float64 written natively by ormsgpack (NaN and infinities as
themselves, still reported in ``nonfinite``). Either body is refused (400) when it is not
exactly one well-formed object: JSON's ``NaN`` and ``Infinity`` tokens, a MessagePack map
that gives a key twice, bytes after the MessagePack object.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import ormsgpack
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from app.api.packing import Malformed, check_one_object
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
            return DifferentiateRequest.model_validate(_unpack(body))
        if media != JSON and not media.endswith("+json"):
            raise UnsupportedMediaType(
                f"The body's Content-Type is {media!r}; send {JSON} or {MSGPACK}")
        return DifferentiateRequest.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        if not _is_msgpack(media) and any(e["type"] == "finite_number" for e in errors):
            _refuse_nonstandard_json(body)
        raise RequestValidationError(errors) from None


def _malformed(message: str) -> RequestValidationError:
    """A body that cannot be read (400 ``invalid_json``)."""
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": message}])


def _unpack(body: bytes) -> Any:
    """One MessagePack object: bytes after it, or a key given twice, are refused."""
    try:
        data = ormsgpack.unpackb(body)
        check_one_object(body)
    except (ormsgpack.MsgpackDecodeError, Malformed) as error:
        raise _malformed(f"Invalid MessagePack: {error}") from None
    return data


class _NotJson(Exception):
    """A ``NaN`` or ``Infinity`` token."""


def _no_constants(token: str) -> Any:
    raise _NotJson(token)


def _refuse_nonstandard_json(body: bytes) -> None:
    """400 for ``NaN`` or ``Infinity`` tokens, which JSON (RFC 8259) does not have.

    pydantic's parser reads them as numbers, so they reach validation as non-finite floats;
    a number too large for float64 (``1e999``) is valid JSON and stays a 422. Read again
    only on that error path."""
    try:
        json.loads(body, parse_constant=_no_constants)
    except _NotJson as token:
        raise _malformed(f"Invalid JSON: {token} is not a JSON number; send finite numbers "
                         "only") from None
    except (ValueError, RecursionError):
        return  # another fault, already reported by validation


def wants_msgpack(accept: str | None) -> bool:
    """Whether the client asks for MessagePack (``Accept: application/msgpack``)."""
    return accept is not None and any(_is_msgpack(part) for part in accept.split(","))


def encode_body(content: Any, msgpack: bool) -> tuple[bytes, str]:
    """The response body's bytes in the negotiated format, and their media type."""
    if msgpack:
        return ormsgpack.packb(content, option=ormsgpack.OPT_SERIALIZE_NUMPY), MSGPACK
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), JSON


def encode_response(content: Any, msgpack: bool) -> Response:
    """The response body in the negotiated format."""
    body, media = encode_body(content, msgpack)
    return Response(body, media_type=media)
