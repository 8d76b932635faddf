"""The service's errors, and the one place that turns them into RFC 9457 problems.

    NablaError                  any error a request can cause; carries status and code
    ├── InputError (422)        the request is well-formed JSON but cannot be computed
    │   ├── ExpressionError     the text does not parse, or names something unknown;
    │   │                       carries ``position``, the 0-based character offset
    │   ├── ShapeError          shapes of variables, points or operands do not fit
    │   ├── PointError          a point lacks a variable or holds a bad number
    │   ├── LimitError          a configured limit is exceeded; names it and its value
    │   └── TooComplex          compiling it uses its whole CPU budget or the memory cap
    ├── PayloadTooLarge (413)   the body is over the size limit
    ├── RequestTimeout (408)    the request's headers or body came too slowly
    ├── Unavailable (503)       no capacity now; carries ``retry_after`` seconds
    └── RemoteProblem           a problem document made in a worker process, passed on

``app.language``, ``app.engine`` and ``app.service`` raise these without knowing about
HTTP; ``app.api.problems`` is the single mapping to responses (``create_app`` installs it).
"""

from __future__ import annotations

from typing import Any, ClassVar


class NablaError(Exception):
    """Base of every error that a request can cause."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        return {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class InputError(NablaError):
    """The request cannot be computed as sent."""

    status = 422
    title = "Unprocessable request"
    code = "invalid_input"


class ExpressionError(InputError):
    """The expression does not parse or names something unknown."""

    title = "Invalid expression"
    code = "invalid_expression"

    def __init__(
        self, detail: str, position: int, *, code: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail, code=code, position=position, **extra)
        self.position = position


class ShapeError(InputError):
    """Shapes of variables, points or operands do not fit together."""

    title = "Shapes do not fit"
    code = "shape_mismatch"


class PointError(InputError):
    """A point lacks a variable, names an unknown one, or holds a bad number."""

    title = "Invalid point"
    code = "invalid_point"


class LimitError(InputError):
    """A configured limit is exceeded."""

    title = "Limit exceeded"
    code = "limit_exceeded"

    def __init__(self, limit: str, value: float, what: str) -> None:
        exact = float(value).is_integer() and abs(value) < 2**53
        shown: float = int(value) if exact else float(value)
        super().__init__(
            f"{what} exceeds the limit {limit} = {shown}; make the request smaller",
            limit=limit,
            limit_value=shown,
        )


class TooComplex(InputError):
    """Compiling the expression costs more than the service allows."""

    title = "Expression too complex"
    code = "too_complex"

    @classmethod
    def time(cls, budget: float) -> TooComplex:
        """The compile budget ran out."""
        return cls(f"Compiling this expression used its whole budget of {budget:g} s of CPU "
                   "time (compile_timeout_seconds); simplify it, use fewer variables, or ask for "
                   "fewer derivatives (the Hessian costs the most)",
                   limit="compile_timeout_seconds", limit_value=budget)

    @classmethod
    def memory(cls) -> TooComplex:
        """The worker's memory cap was reached."""
        return cls("Compiling or evaluating this expression needs more memory than the cap "
                   "(worker_memory_bytes); use fewer variables or points, or no Hessian",
                   limit="worker_memory_bytes")


class PayloadTooLarge(NablaError):
    """The request body is larger than allowed."""

    status = 413
    title = "Request body too large"
    code = "payload_too_large"


class RequestTimeout(NablaError):
    """The client sent its request too slowly (RFC 9110, 15.5.9): the connection is closed."""

    status = 408
    title = "Request timeout"
    code = "request_timeout"


class Unavailable(NablaError):
    """The service has no capacity for this request now."""

    status = 503
    title = "Service unavailable"
    code = "unavailable"

    def __init__(self, detail: str, retry_after: int = 1, *, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class RemoteProblem(NablaError):
    """A problem document produced in a worker process, raised again in the server."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(str(problem.get("detail", "")), code=str(problem.get("code")))
        self._problem = problem
        self.status = int(problem.get("status", 422))  # type: ignore[misc]

    def problem(self) -> dict[str, Any]:
        """The document as the worker made it."""
        return dict(self._problem)
