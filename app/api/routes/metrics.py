"""GET /metrics: the Prometheus text exposition of this process's metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from app.ops.metrics import Metrics

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics of this process",
            response_class=Response)
async def metrics(request: Request) -> Response:
    """Requests, latencies, compile-cache hits and misses, compile seconds, process stats."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
