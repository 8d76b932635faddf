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


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}},
             "description": text}
    for status, text in {
        400: "The body is not valid JSON",
        413: "The request body is too large",
        422: "The request cannot be computed: the problem says what to change",
        503: "No capacity now; retry after Retry-After seconds",
    }.items()
}
