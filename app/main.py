"""The ASGI application: ``create_app`` assembles routers, error handlers and middleware."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api import observability, openapi, problems
from app.api.allowance import RequestAllowance
from app.api.apikeys import ApiKeys
from app.api.direct import DirectRoute
from app.api.hot import HotPath
from app.api.limits import BodySizeLimit, ConcurrencyLimit
from app.api.memo import ResponseMemo
from app.api.ratelimit import Limiter, RateLimit
from app.api.routes import differentiate, docs, functions, health, implicit, pages, plot
from app.api.uploads import WholeBodies
from app.config import Settings, get_settings
from app.service.pipeline import Service


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new nabla application with its own caches."""
    settings = settings or get_settings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        # What start-up made (JAX, SymPy, the app: 200,000 objects) lives as long as the
        # process: out of the cyclic collector's way, a full collection takes 0 ms, not
        # 116 ms in the middle of some request.
        gc.freeze()
        try:
            yield
        finally:
            # The server has drained (or cancelled what ran past its graceful timeout: those
            # answer 503 now); the workers stop last, off the event loop.
            await asyncio.sleep(0)
            await service.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title="nabla",
        version=__version__,
        summary="Values, gradients, Jacobians and Hessians of mathematical expressions",
        description="Send an expression and the points where you want it; get back its "
        "value, gradient (or Jacobian) and Hessian, computed by JAX in float64.",
        docs_url=None,  # app/api/routes/docs.py serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.service = service
    problems.install(app)
    openapi.install(app)
    # Innermost: the hot path, answered without the router, inside every limit below.
    app.add_middleware(DirectRoute, service=service)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Remembered answers, then warm one-point requests answered where they are read.
    app.add_middleware(ResponseMemo, max_bytes=settings.response_cache_bytes,
                       paths=(differentiate.PATH,), hot=HotPath(service).answer,
                       routes={differentiate.PATH: DirectRoute.route_of(differentiate.PATH)})
    app.add_middleware(RequestAllowance, deadline_seconds=settings.request_deadline_seconds)
    app.add_middleware(ConcurrencyLimit, max_requests=settings.max_concurrent_requests)
    # Outside ConcurrencyLimit: a request takes a slot only once its body is complete.
    app.add_middleware(WholeBodies, max_bytes=settings.max_body_bytes,
                       idle_seconds=settings.body_timeout_seconds,
                       min_rate=settings.min_upload_bytes_per_second)
    # Outside the memo, so every request counts; bad settings are refused here, at start-up.
    app.add_middleware(RateLimit, keys=ApiKeys.from_settings(settings),
                       limiter=Limiter.from_settings(settings))
    observability.install(app, settings, service.cache)
    app.include_router(differentiate.router)
    app.include_router(implicit.router)
    app.include_router(plot.router)
    app.include_router(functions.router)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(pages.router)
    app.mount(docs.ASSETS_URL, docs.assets(), name="docs-assets")
    app.mount("/static", pages.static_files(), name="static")
    return app


app = create_app()
