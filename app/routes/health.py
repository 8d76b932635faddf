"""Probes: /livez (the process answers) and /readyz (it can take work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="The process is alive")
async def livez() -> dict[str, str]:
    """Answers at once while the event loop runs."""
    return {"status": "ok"}


@router.get("/readyz", summary="The service can take work")
async def readyz() -> dict[str, str]:
    """Ready once start-up has finished."""
    return {"status": "ready"}
