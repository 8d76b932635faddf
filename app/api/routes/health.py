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
            responses={503: {"description": "No worker can take work: starting, or being "
                             "restarted after a fault, or every worker stopped"}})
async def readyz(request: Request) -> Response:
    """Ready while a compile worker is up, warm and running (503 problem otherwise)."""
    not_ready = request.app.state.service.not_ready
    if not_ready is None:
        return JSONResponse({"status": "ready"})
    error = Unavailable(f"Not ready: {not_ready.reason}; retry shortly", code=not_ready.code)
    return problem_response(error.problem(), {"Retry-After": str(error.retry_after)})
