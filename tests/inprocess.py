"""The whole app in process: requests through httpx's ASGI transport, on one event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


class InProcess:
    """An app of its own (first tier on, no background compiles) and a client for it; an
    error inside the app is an answer (500), as a server would give, not an exception."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **settings: Any) -> None:
        self.loop = loop
        self.app: FastAPI = create_app(Settings(in_process=True, **settings))
        self.app.state.service.engine.compile_later = lambda spec: None
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://nabla", timeout=120)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, answered."""
        coroutine = self.client.request(method, path, **kwargs)
        response: httpx.Response = asyncio.run_coroutine_threadsafe(coroutine,
                                                                    self.loop).result()
        return response

    def close(self) -> None:
        """Close the client."""
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result()

    def post(self, body: bytes, content_type: str = "application/json") -> httpx.Response:
        """POST /v1/differentiate with ``body`` as it is."""
        return self.request("POST", "/v1/differentiate", content=body,
                            headers={"content-type": content_type})
