"""The hot path: a warm one-point request, answered where it is read.

A warm request (an expression compiled before, at a new point) is ~20 us of XLA and of
NumPy; reading it into the request model, planning it, routing it and finding its
executable again cost several times that. Most warm traffic repeats one *form* with new
numbers: ``{"expression": ..., "at": {name: number, ...}}``, and optionally
``"derivatives"``. The form of a body is everything in it but the point's numbers:

1. The first body of a form goes the full way, and only the form's hash is noted (in a
   FIFO of four times ``FORMS``): most forms are seen once (a new expression, a compile
   bomb), and planning them here as well cost each ~50 us. The second is read and planned
   by the service as any request is (``Service.prepare``); the plan is kept under the form,
   in an LRU of ``FORMS``, or None when the form cannot be answered here (it asks for
   symbolic output, it is invalid...).
2. A later body of that form is read with orjson. Its numbers are checked as the request
   model checks them: JSON numbers (orjson refuses NaN, Infinity and 1e999) that float64
   holds exactly when they are integers (up to 2**53). ``Service.at_once`` then computes the
   answer by the same steps as the full path (``app.service.pipeline``), if the form's
   executable is cached and the work is small; orjson writes it as the route does.

Anything else (another field, a vector's list of numbers, MessagePack, a JSON body that is
not one object, a program not compiled yet, an error) returns None: the full path answers
it, or explains its problem. The hot path answers only what the full path would, with the
same bytes (``tests/test_hot.py``). ``app.api.memo`` calls it for bodies it does not
remember, so it runs inside every limit (body size and time, slots, the deadline).
"""

from __future__ import annotations

from typing import Any

import orjson
from cachetools import LRUCache
from fastapi.exceptions import RequestValidationError

from app.api.transport import JSON, decode_request, wants_msgpack
from app.engine import admission
from app.engine.caches import Doorkeeper
from app.errors import NablaError
from app.service.pipeline import Prepared, Service

#: The forms whose plans are kept (a plan is a few hundred bytes; its key, the form, holds
#: the expression's text: at most the memo's largest body, 64 KiB).
FORMS = 1024
FORM_FIELDS = frozenset({"expression", "at", "derivatives"})
#: Integers that float64 holds exactly; the request model reads larger ones rounded.
EXACT_INTEGERS = 2**53

Form = tuple[str | tuple[str, ...], tuple[str, ...] | None, tuple[str, ...]]
_UNSEEN = object()


class HotPath:
    """Answers warm one-point requests of known forms; None for every other body."""

    def __init__(self, service: Service, forms: int = FORMS) -> None:
        self.service = service
        self._plans: LRUCache[Form, Prepared | None] = LRUCache(forms)
        self._seen = Doorkeeper(4 * forms)

    def __len__(self) -> int:
        return len(self._plans)

    def answer(self, body: bytes, content_type: bytes | None, accept: bytes | None,
               ) -> bytes | None:
        """The JSON answer to ``body``, or None when the full path is to answer it."""
        if not _is_json(content_type) or (accept is not None and wants_msgpack(
                accept.decode("latin-1"))):
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        form = form_of(data)
        if form is None:
            return None
        prepared = self._plans.get(form, _UNSEEN)
        if prepared is _UNSEEN:
            if not self._seen.seen_before(hash(form)):
                return None
            prepared = self._prepare(body)
            self._plans[form] = prepared
        if prepared is None:
            return None
        assert isinstance(prepared, Prepared)
        try:
            result = self.service.at_once(prepared, data["at"])
        except NablaError:  # the full path reports it
            return None
        if result is None:
            return None
        return orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)

    def _prepare(self, body: bytes) -> Prepared | None:
        allowance = admission.current()
        if allowance is None:
            return None
        try:
            prepared = self.service.prepare(decode_request(body, JSON), allowance)
        except (NablaError, RequestValidationError):
            return None
        return prepared if prepared.at_once else None


def form_of(data: Any) -> Form | None:
    """The form of a decoded body (its expression, derivatives and the names of its point),
    or None when the body is not ``{"expression", "at": {name: number}, "derivatives"?}``
    with numbers the request model reads exactly as they are."""
    if type(data) is not dict or not data.keys() <= FORM_FIELDS:
        return None
    expression, at = data.get("expression"), data.get("at")
    if type(at) is not dict:
        return None
    for number in at.values():
        kind = type(number)
        if kind is not float and (kind is not int or not -EXACT_INTEGERS <= number
                                  <= EXACT_INTEGERS):
            return None
    texts: str | tuple[str, ...]
    if type(expression) is str:
        texts = expression
    elif type(expression) is list and all(type(text) is str for text in expression):
        texts = tuple(expression)
    else:
        return None
    derivatives = data.get("derivatives", _UNSEEN)
    if derivatives is _UNSEEN:
        return texts, None, tuple(at)
    if type(derivatives) is not list or not all(type(d) is str for d in derivatives):
        return None
    return texts, tuple(derivatives), tuple(at)


def _is_json(content_type: bytes | None) -> bool:
    """Whether the body is JSON as the full path reads it first (no Content-Type, or JSON's)."""
    if content_type is None:
        return True
    return content_type.split(b";")[0].strip().lower() == b"application/json"
