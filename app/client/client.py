"""A Python client for the nabla API, on httpx.

    NablaClient("http://127.0.0.1:8000").differentiate("x**2 * y", at={"x": 1, "y": 2})

4xx and 5xx answers raise ``NablaAPIError``, which carries the RFC 9457 problem document.
A 429 or 503 is first tried again, up to ``RetryPolicy.retries`` times, after the wait its
``Retry-After`` asks for (capped); see ``app/client/retries.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from app.client.retries import RetryPolicy, retry_after_seconds

DEFAULT_URL = "http://127.0.0.1:8000"
Point = Mapping[str, Any]


class NablaAPIError(Exception):
    """The service answered with an error; ``problem`` is its problem document."""

    def __init__(self, status: int, problem: dict[str, Any],
                 retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after  # seconds, from the answer's Retry-After
        self.problem = problem
        self.title = str(problem.get("title", f"HTTP {status}"))
        self.detail = str(problem.get("detail", ""))
        self.code = problem.get("code")
        self.position: int | None = problem.get("position")
        super().__init__(f"{status} {self.title}: {self.detail}")


class NablaClient:
    """A connection to one nabla service; use it as a context manager, or ``close()`` it.

    ``api_key`` is sent as ``Authorization: Bearer``; ``retry`` says how often a 429 or 503
    is tried again; ``sleep`` waits (``time.sleep``); ``on_retry(error, seconds)`` hears of
    each retry before its wait.
    """

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None, api_key: str | None = None,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[NablaAPIError, float], None] | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers=headers)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._on_retry = on_retry

    def __enter__(self) -> NablaClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def differentiate(self, expression: str | Sequence[str], *, at: Point | None = None,
                      points: Sequence[Point] | Point | None = None,
                      variables: Mapping[str, Sequence[int]] | None = None,
                      derivatives: Sequence[str] | None = None,
                      **more: Any) -> dict[str, Any]:
        """POST /v1/differentiate; the response body as a dict. ``more`` passes the other
        fields of the request as they are: ``order``, ``direction``, ``partials``,
        ``taylor``, ``check``, ``grid``, ``tangent``, ``cotangent``."""
        body: dict[str, Any] = {
            "expression": expression if isinstance(expression, str) else list(expression)}
        optional = {"at": at, "points": points, "variables": variables,
                    "derivatives": derivatives, **more}
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._request("POST", "/v1/differentiate", json=body)

    def implicit(self, equation: str, dependent: str, at: Mapping[str, float], *,
                 order: int = 2, symbolic: bool = True) -> dict[str, Any]:
        """POST /v1/implicit: derivatives of ``dependent`` defined by ``equation``."""
        return self._request("POST", "/v1/implicit", json={
            "equation": equation, "dependent": dependent, "at": dict(at), "order": order,
            "symbolic": symbolic})

    def ready(self) -> bool:
        """True when ``/readyz`` answers 200."""
        return self._http.get("/readyz").status_code == 200

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        retry = 0
        while True:
            response = self._http.request(method, path, **kwargs)
            if not response.is_error:
                body: dict[str, Any] = response.json()
                return body
            retry += 1
            asked = response.headers.get("retry-after")
            error = NablaAPIError(response.status_code, _problem_of(response),
                                  retry_after_seconds(asked))
            wait = self.retry.wait(response.status_code, asked, retry)
            if wait is None:
                raise error
            if self._on_retry is not None:
                self._on_retry(error, wait)
            self._sleep(wait)


def _problem_of(response: httpx.Response) -> dict[str, Any]:
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return problem
    # Not a problem document (a proxy's error page, say): make one from the text.
    return {"type": "about:blank", "title": response.reason_phrase or "Error",
            "status": response.status_code, "detail": response.text[:500]}
