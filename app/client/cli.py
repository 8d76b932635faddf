"""The ``nabla`` command: ``nabla differentiate`` asks a server, ``nabla serve`` runs one.

    nabla differentiate "2*dot(x, x)" --var x=4 --at x=0,1,2,3
    nabla differentiate "x*y" "x + y^2" --at x=2 --at y=3 --json
    nabla serve --port 8000

A 429 or 503 answer is tried again (``--retries``, default 3) after the wait its
``Retry-After`` asks for, at most ``--max-retry-wait`` seconds. An API key is read from
``$NABLA_API_KEY`` (never from the command line, which other users can see).

Exit status: 0 on success, 1 when the service answers with an error or cannot be reached,
2 for a command line that does not parse.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import httpx

from app import __version__
from app.client.client import DEFAULT_URL, NablaAPIError, NablaClient
from app.client.retries import RetryPolicy
from app.client.table import render_result


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name.strip(), value.strip() if sep else ""


def _numbers(name: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--at {name}={text}: give numbers separated by commas, such as {name}=0,1,2") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"--at {name}={text}: numbers must be finite")
    return values


def _shape(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [len(value), len(value[0])] if isinstance(value[0], list) else [len(value)]


def build_request(expressions: Sequence[str], at: Sequence[tuple[str, str]],
                  var: Sequence[tuple[str, str]],
                  derivatives: str | None) -> dict[str, Any]:
    """The keyword arguments of ``NablaClient.differentiate`` from the command line."""
    shapes: dict[str, list[int]] = {}
    for name, length in var:
        sizes = length.lower().replace("x", ",").split(",") if length else []
        if not all(s.isdigit() and int(s) > 0 for s in sizes) or len(sizes) > 2:
            raise argparse.ArgumentTypeError(
                f"--var {name}={length}: give a positive length ({name}=4), rows x columns "
                f"for a matrix ({name}=3x3), or none for a scalar ({name})")
        shapes[name] = [int(s) for s in sizes]
    point: dict[str, Any] = {}
    for name, text in at:
        if ";" in text:  # a matrix, rows separated by ; as in MATLAB
            point[name] = [_numbers(name, row) for row in text.split(";")]
            continue
        values = _numbers(name, text)
        vector = shapes[name] != [] if name in shapes else len(values) > 1
        point[name] = values if vector else values[0]
    request: dict[str, Any] = {
        "expression": expressions[0] if len(expressions) == 1 else list(expressions),
        "at": point}
    if shapes:
        # Declared variables first, then the others of the point with their own shapes.
        request["variables"] = {**shapes, **{
            n: _shape(v) for n, v in point.items() if n not in shapes}}
    if derivatives:
        request["derivatives"] = [d.strip() for d in derivatives.split(",") if d.strip()]
    return request


def parser() -> argparse.ArgumentParser:
    """The command line of ``nabla``."""
    top = argparse.ArgumentParser(prog="nabla", description="Derivatives of expressions, "
                                  "computed by a nabla service.")
    top.add_argument("--version", action="version", version=f"nabla {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("differentiate", help="value, gradient and Hessian at a point",
                               description="Ask a nabla service for an expression's value, "
                               "gradient (or Jacobian) and Hessian at one point.")
    diff.add_argument("expression", nargs="+", help="the expression; several make f "
                      "vector-valued")
    diff.add_argument("--at", action="append", type=_assignment, default=[],
                      metavar="NAME=V[,V...]", help="a variable's value: one number, "
                      "several separated by commas for a vector, rows separated by ; for a "
                      "matrix (X='1,2;3,4'); repeat for each variable")
    diff.add_argument("--var", action="append", type=_assignment, default=[],
                      metavar="NAME[=N]", help="declare a variable: a vector of N elements, "
                      "a matrix with =MxN, or a scalar without =N; declared variables come "
                      "first, in this order")
    diff.add_argument("-d", "--derivatives", metavar="KINDS",
                      help="what to compute, comma-separated: value,gradient,hessian")
    diff.add_argument("--url", default=os.environ.get("NABLA_URL", DEFAULT_URL),
                      help="the service (default: $NABLA_URL or %(default)s)")
    diff.add_argument("--json", action="store_true", help="print the API's JSON answer")
    diff.add_argument("--retries", type=_count, default=RetryPolicy.retries, metavar="N",
                      help="tries again after a 429 or 503 answer (default: %(default)s)")
    diff.add_argument("--max-retry-wait", type=_seconds, default=RetryPolicy.max_wait,
                      metavar="SECONDS", help="the longest wait before a retry, whatever "
                      "the service's Retry-After asks (default: %(default)s)")
    serve = commands.add_parser("serve", help="run the server", description="Run the nabla "
                                "server; see the README for its NABLA_* environment variables.")
    serve.add_argument("--host", help="address to listen on (default: $NABLA_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $NABLA_PORT or 8000)")
    serve.add_argument("--workers", type=int,
                       help="worker processes (default: $WEB_CONCURRENCY or 1)")
    return top


def differentiate(args: argparse.Namespace, top: argparse.ArgumentParser) -> int:
    """Run ``nabla differentiate``; the exit status."""
    try:
        request = build_request(args.expression, args.at, args.var, args.derivatives)
    except argparse.ArgumentTypeError as error:
        top.error(str(error))
    retry = RetryPolicy(retries=args.retries, max_wait=args.max_retry_wait)
    try:
        with NablaClient(args.url, api_key=os.environ.get("NABLA_API_KEY") or None,
                         retry=retry, on_retry=_say_retry) as client:
            result = client.differentiate(**request)
    except NablaAPIError as error:
        if args.json:
            print(json.dumps(error.problem, indent=2))
        _report(error, request)
        return 1
    except httpx.HTTPError as error:
        print(f"nabla: cannot reach {args.url}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else render_result(result))
    return 0


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 0 or more")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds, 0 or more")
    return seconds


def _say_retry(error: NablaAPIError, seconds: float) -> None:
    code = f" ({error.code})" if error.code else ""
    print(f"nabla: {error.status} {error.title}{code}; trying again in {seconds:g} s",
          file=sys.stderr)


def _report(error: NablaAPIError, request: dict[str, Any]) -> None:
    print(f"nabla: {error}", file=sys.stderr)
    expression = request["expression"]
    if isinstance(error.position, int) and isinstance(expression, str):
        print(f"  {expression}\n  {' ' * error.position}^", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nabla`` command."""
    top = parser()
    args = top.parse_args(argv)
    if args.command == "serve":
        serve(args)
    return differentiate(args, top)


def serve(args: argparse.Namespace) -> NoReturn:
    """Become the server process (``python -m app.ops.serve``): the client imports nothing
    of the server, and signals sent to this process reach uvicorn itself."""
    flags = [f"--{name}={value}" for name in ("host", "port", "workers")
             if (value := getattr(args, name)) is not None]
    os.execv(sys.executable, [sys.executable, "-m", "app.ops.serve", *flags])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
