"""The FastAPI dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.service.pipeline import Service


async def get_service(request: Request) -> Service:
    """The process's service, made by ``create_app`` (async: no thread hop)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
