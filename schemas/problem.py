"""The RFC 9457 problem document that every error response carries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """An error: ``detail`` says what to change."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI reference naming the kind of problem")
    title: str
    status: int
    detail: str
    code: str = Field(description="a stable machine-readable code")
    position: int | None = Field(None, description="0-based character offset in the expression")
    errors: list[dict[str, Any]] | None = Field(None, description="each invalid field")
    suggestions: list[str] | None = Field(
        None, description="unknown names: what the name was probably meant to be, best first")
    readings: list[str] | None = Field(
        None, description="an ambiguous spelling: how to write each of its readings")


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 1}}}
_PROBLEMS = {
    400: "The body is not valid JSON",
    401: "An API key is required (only when the operator configured keys)",
    408: "The request's headers or body arrived too slowly",
    413: "The request body is too large",
    422: "The request cannot be computed: the problem says what to change",
    429: "This client sent more requests than its rate limit; retry after Retry-After seconds",
    503: "No capacity now; retry after Retry-After seconds",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these problem statuses (all of them when none is named)."""
    return {status: {"model": Problem, "content": {"application/problem+json": {}},
                     "description": text,
                     **({"headers": _RETRY_AFTER} if status in (429, 503) else {})}
            for status, text in _PROBLEMS.items() if not statuses or status in statuses}


PROBLEM_RESPONSES = problem_responses()
# what any /v1/ route may answer before it runs: no key, over the rate limit
GATE_RESPONSES = problem_responses(401, 429)
