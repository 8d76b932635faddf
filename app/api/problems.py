"""The one mapping from errors to RFC 9457 problem responses (``application/problem+json``)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.errors import NablaError, Unavailable

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("nabla")


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A problem document as a response with its own status."""
    return Response(orjson.dumps(problem), status_code=int(problem["status"]),
                    media_type=PROBLEM_JSON, headers=headers)


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem document built from its parts."""
    return {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail,
            "code": code, **extra}


async def _nabla_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NablaError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
    return problem_response(exc.problem(), headers)


def _location(loc: tuple[Any, ...]) -> str:
    # Drop "body" and the union member tags pydantic adds ("float", "list[float]").
    parts = [str(p) for p in loc if p != "body" and not str(p).startswith(("float", "list["))]
    return ".".join(parts) if parts else "the body"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()][:50]
    invalid = next((e for e in errors if e["type"] == "json_invalid"), None)
    if invalid is not None:
        reason = invalid["msg"] if invalid["msg"] != "JSON decode error" else "Invalid JSON"
        return problem_response(problem(
            400, "invalid_json", "Malformed JSON",
            f"The body cannot be read ({reason}); send a JSON object such as "
            '{"expression": "sin(x)", "at": {"x": 1}}', errors=errors))
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{_location(tuple(first['loc']))}: {first['msg']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more; see errors)"
    return problem_response(problem(422, "invalid_request", "Invalid request", detail,
                                    errors=errors))


def _unparsable_body(cause: BaseException | None) -> Response:
    reasons = {RecursionError: "it is nested too deeply",
               UnicodeDecodeError: "it is not UTF-8 text"}
    reason = next((text for kind, text in reasons.items() if isinstance(cause, kind)),
                  "it is not valid JSON")
    return problem_response(problem(
        400, "invalid_json", "Malformed JSON",
        f"The body cannot be read: {reason}; send a JSON object such as "
        '{"expression": "sin(x)", "at": {"x": 1}}'))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        return _unparsable_body(exc.__cause__)  # FastAPI could not decode the body
    titles = {404: "Not found", 405: "Method not allowed"}
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404:
        detail = f"There is nothing at {request.url.path}; see /docs for the API"
    if exc.status_code == 405:
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        detail = _method_detail(request, headers.get("allow", ""))
    body = problem(exc.status_code, f"http_{exc.status_code}",
                   titles.get(exc.status_code, detail), detail)
    return problem_response(body, dict(exc.headers) if exc.headers else None)


def _method_detail(request: Request, allowed: str) -> str:
    """What to do instead of a method the route does not take (its ``Allow`` header)."""
    detail = f"{request.method} is not allowed on {request.url.path}; use {allowed or 'GET'}"
    if allowed == "POST":
        detail += (', with a JSON body such as {"expression": "sin(x)", "at": {"x": 1}} '
                   "(see /docs)")
    return detail


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path)
    return problem_response(problem(500, "internal_error", "Internal server error",
                                    "The server failed; this is a bug, please report it"))


def install(app: FastAPI) -> None:
    """Install the problem handlers on ``app``."""
    app.add_exception_handler(NablaError, _nabla_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
