"""POST /v1/differentiate: parse -> compile -> differentiate -> response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from app.responses import ArrayJSONResponse
from app.service import Differentiator
from schemas.differentiate import (
    DIFFERENTIATE_EXAMPLES,
    DifferentiateRequest,
    DifferentiateResponse,
)
from schemas.problem import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["derivatives"])


async def get_differentiator(request: Request) -> Differentiator:
    """The process's differentiator, made by ``create_app`` (async: no thread hop)."""
    differentiator: Differentiator = request.app.state.differentiator
    return differentiator


DifferentiatorDep = Annotated[Differentiator, Depends(get_differentiator)]


@router.post(
    "/differentiate",
    response_model=DifferentiateResponse,
    response_model_exclude_none=True,
    responses=PROBLEM_RESPONSES,
    summary="Values, gradient or Jacobian, and Hessian of an expression",
)
async def differentiate(
    body: Annotated[DifferentiateRequest, Body(openapi_examples=DIFFERENTIATE_EXAMPLES)],
    differentiator: DifferentiatorDep,
) -> ArrayJSONResponse:
    """Differentiate ``expression`` at one point (``at``) or a batch (``points``)."""
    return ArrayJSONResponse(await differentiator.run(body))
