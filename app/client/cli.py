"""The ``nabla`` command: ``nabla differentiate`` asks a server, ``nabla serve`` runs one.

    nabla differentiate "2*dot(x, x)" --var x=4 --at x=0,1,2,3
    nabla differentiate "x*y" "x + y^2" --at x=2 --at y=3 --json
    nabla differentiate "x^3*y^2" --at x=2 --at y=3 --order 4 --partial x=2,y=1
    nabla differentiate "sin(x)" --at x=0 --taylor 5 --remainder-at x=1
    nabla differentiate "x^2*y" --at x=1 --at y=2 --check --claim "2*x*y" --claim "x^2"
    nabla implicit "x^2 + y^2 = 1" --dependent y --at x=0.6 --at y=0.8 --order 2
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


def _powers(text: str) -> dict[str, int]:
    """``x=2,y=1`` -> {"x": 2, "y": 1}: a multi-index of --partial."""
    powers: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, power = part.partition("=")
        if not power.strip().isdigit():
            raise argparse.ArgumentTypeError(f"--partial {text}: give NAME=POWER pairs "
                                             "separated by commas, such as x=2,y=1")
        powers[name.strip()] = int(power)
    return powers


def past_the_hessian(args: argparse.Namespace, point: dict[str, Any]) -> dict[str, Any]:
    """The request's fields beyond the Hessian from the command line."""
    extra: dict[str, Any] = {}
    if args.order is not None:
        extra["order"] = args.order
    if args.direction:
        extra["direction"] = _point(args.direction, point, "--direction")
    if args.partial:
        extra["partials"] = [_powers(p) for p in args.partial]
    if args.taylor is not None:
        extra["taylor"] = {"order": args.taylor}
        if args.remainder_at:
            extra["taylor"]["remainder_at"] = _point(args.remainder_at, point,
                                                     "--remainder-at")
    if args.check or args.claim:
        extra["check"] = {"gradient": list(args.claim)} if args.claim else {}
    return extra


def _point(given: Sequence[tuple[str, str]], like: dict[str, Any],
           flag: str) -> dict[str, Any]:
    """Values NAME=V[,V...] shaped like the point's."""
    point: dict[str, Any] = {}
    for name, text in given:
        values = _numbers(name, text)
        point[name] = values if isinstance(like.get(name), list) or len(values) > 1 \
            else values[0]
    return point
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
    diff.add_argument("--order", type=_count, metavar="K", help="the highest derivative "
                      "order: from 3, the tensors up to K (with --direction, the "
                      "derivatives along it instead)")
    diff.add_argument("--direction", action="append", type=_assignment, default=[],
                      metavar="NAME=V[,V...]", help="a direction: the derivatives of order 1 .. "
                      "K along it (repeat for each variable)")
    diff.add_argument("--partial", action="append", default=[], metavar="NAME=P[,NAME=P]",
                      help="a mixed partial by multi-index, x=2,y=1 for d3f/dx2dy (repeat)")
    diff.add_argument("--taylor", type=_count, metavar="K", help="the Taylor polynomial of "
                      "order K about the point")
    diff.add_argument("--remainder-at", action="append", type=_assignment, default=[],
                      metavar="NAME=V", help="with --taylor: its remainder at this point")
    diff.add_argument("--check", action="store_true", help="check the gradient and Hessian "
                      "against finite differences and a Taylor test")
    diff.add_argument("--claim", action="append", default=[], metavar="FORMULA",
                      help="check your own gradient: one formula per coordinate, in order "
                      "(repeat)")
    _connection(diff)
    imp = commands.add_parser("implicit", help="derivatives of y defined by an equation",
                              description="Ask a nabla service for dy/dx, d2y/dx2, ... of the "
                              "variable that an equation F = G defines, at a point on it.")
    imp.add_argument("equation", help="two expressions separated by one '='")
    imp.add_argument("--dependent", required=True, metavar="NAME", help="the variable the "
                     "equation defines, such as y")
    imp.add_argument("--at", action="append", type=_assignment, default=[], metavar="NAME=V",
                     help="a point on the curve: every variable, the dependent one included")
    imp.add_argument("--order", type=_count, default=2, metavar="K",
                     help="derivatives 1 .. K (default: %(default)s)")
    _connection(imp)
    serve = commands.add_parser("serve", help="run the server", description="Run the nabla "
                                "server; see the README for its NABLA_* environment variables.")
    serve.add_argument("--host", help="address to listen on (default: $NABLA_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $NABLA_PORT or 8000)")
    serve.add_argument("--workers", type=int,
                       help="worker processes (default: $WEB_CONCURRENCY or 1)")
    return top


def _connection(command: argparse.ArgumentParser) -> None:
    command.add_argument("--url", default=os.environ.get("NABLA_URL", DEFAULT_URL),
                         help="the service (default: $NABLA_URL or %(default)s)")
    command.add_argument("--json", action="store_true", help="print the API's JSON answer")
    command.add_argument("--retries", type=_count, default=RetryPolicy.retries, metavar="N",
                         help="tries again after a 429 or 503 answer (default: %(default)s)")
    command.add_argument("--max-retry-wait", type=_seconds, default=RetryPolicy.max_wait,
                         metavar="SECONDS", help="the longest wait before a retry, whatever "
                         "the service's Retry-After asks (default: %(default)s)")


def differentiate(args: argparse.Namespace, top: argparse.ArgumentParser) -> int:
    """Run ``nabla differentiate`` or ``nabla implicit``; the exit status."""
    try:
        if args.command == "implicit":
            request = {"equation": args.equation, "dependent": args.dependent,
                       "at": {n: _numbers(n, v)[0] for n, v in args.at}, "order": args.order}
        else:
            request = build_request(args.expression, args.at, args.var, args.derivatives)
            request.update(past_the_hessian(args, request["at"]))
    except argparse.ArgumentTypeError as error:
        top.error(str(error))
    retry = RetryPolicy(retries=args.retries, max_wait=args.max_retry_wait)
    try:
        with NablaClient(args.url, api_key=os.environ.get("NABLA_API_KEY") or None,
                         retry=retry, on_retry=_say_retry) as client:
            result = (client.implicit(**request) if args.command == "implicit"
                      else client.differentiate(**request))
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
    expression = request.get("expression", request.get("equation"))
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
