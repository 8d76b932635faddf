"""Probes: /livez (the process answers) and /readyz (it can take work)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from app.api.problems import problem_response
from app.errors import Unavailable

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="The process is alive")
async def livez() -> dict[str, str]:
    """Answers at once while the event loop runs."""
    return {"status": "ok"}


@router.get("/readyz", summary="The service can take work",
            responses={503: {"description": "Starting: the compile workers are not warm yet"}})
async def readyz(request: Request) -> Response:
    """Ready once a compile worker is up and warm (503 problem before that)."""
    if request.app.state.service.ready:
        return JSONResponse({"status": "ready"})
    error = Unavailable("The compile workers are starting; retry shortly", code="starting")
    return problem_response(error.problem(), {"Retry-After": str(error.retry_after)})
