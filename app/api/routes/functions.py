"""GET /v1/functions: the functions and constants of the expression language, from the catalog."""

from __future__ import annotations

from fastapi import APIRouter

from app.language.catalog import capabilities
from schemas.functions import FunctionsResponse
from schemas.problem import GATE_RESPONSES

router = APIRouter(prefix="/v1", tags=["language"])
_CAPABILITIES = FunctionsResponse.model_validate(capabilities())  # the catalog is fixed


@router.get("/functions", response_model=FunctionsResponse, responses=GATE_RESPONSES,
            summary="The functions and constants that expressions may use")
async def functions() -> FunctionsResponse:
    """Each function's names, arity, description, conventions and an example to post."""
    return _CAPABILITIES
