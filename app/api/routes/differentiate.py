"""POST /v1/differentiate: parse -> compile -> differentiate -> response.

``app.api.direct`` answers this path in front of FastAPI's router with the same ``answer``;
the route stays for the OpenAPI document and for an app served without that middleware.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import get_service
from app.api.transport import MSGPACK, decode_request, encode_body, wants_msgpack
from app.service.pipeline import Service
from schemas.differentiate import (
    DIFFERENTIATE_EXAMPLES,
    DifferentiateResponse,
)
from schemas.problem import PROBLEM_RESPONSES, Problem


def request_body_openapi() -> dict[str, Any]:
    """The documented request body: the model's schema, as JSON or MessagePack."""
    schema = {"$ref": "#/components/schemas/DifferentiateRequest"}
    return {"required": True, "content": {
        "application/json": {"schema": schema, "examples": DIFFERENTIATE_EXAMPLES},
        MSGPACK: {"schema": schema}}}

router = APIRouter(prefix="/v1", tags=["derivatives"])
PATH = "/v1/differentiate"


@router.post(
    "/differentiate",
    response_model=DifferentiateResponse,
    response_model_exclude_none=True,
    responses={**PROBLEM_RESPONSES, 200: {"content": {MSGPACK: {}}},
               415: {"model": Problem, "description": "Content-Type not JSON or MessagePack",
                     "content": {"application/problem+json": {}}}},
    summary="Values, gradient or Jacobian, and Hessian of an expression",
    openapi_extra={"requestBody": request_body_openapi()},
)
async def differentiate(request: Request) -> Response:
    """Differentiate ``expression`` at one point (``at``), a batch (``points``) or a grid.

    The body is JSON, or MessagePack with ``Content-Type: application/msgpack``; send
    ``Accept: application/msgpack`` for a MessagePack answer (big batches)."""
    body, media = await answer(await get_service(request), await request.body(),
                               request.headers.get("content-type"),
                               request.headers.get("accept"))
    return Response(body, media_type=media)


async def answer(service: Service, raw: bytes, content_type: str | None,
                 accept: str | None) -> tuple[bytes, str]:
    """The answer's bytes and media type; raises what the problem handlers map."""
    big = len(raw) > BIG_BODY  # decoding and encoding megabytes: off the event loop
    body = (await run_in_threadpool(decode_request, raw, content_type) if big
            else decode_request(raw, content_type))
    result = await service.run(body)
    if big or _result_size(result) > BIG_RESULT:
        return await run_in_threadpool(encode_body, result, wants_msgpack(accept))
    return encode_body(result, wants_msgpack(accept))


BIG_BODY = 256 * 1024
BIG_RESULT = 100_000  # numbers


def _result_size(result: dict[str, Any]) -> int:
    return sum(v.size for v in result.values() if isinstance(v, np.ndarray))
