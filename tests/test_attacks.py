"""The attack corpus, over real HTTP: each gets a 4xx problem, fast, and the server lives on.

"Fast" is bounded by the client's timeout (a hang fails the test), not by a timed
assertion: each answer must arrive within ``BOUND`` seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

BOUND = 30.0
SENTINEL = Path("/tmp/nabla-attack-sentinel")


def expression(text: str, **extra: Any) -> bytes:
    return json.dumps({"expression": text, "at": {"x": 1}, **extra}).encode()


CORPUS: list[tuple[str, bytes, int, str]] = [
    # code execution and attribute access
    ("import", expression(f"__import__('os').system('touch {SENTINEL}')"), 422, "syntax_error"),
    ("subclasses", expression("().__class__.__bases__[0].__subclasses__()"), 422,
     "syntax_error"),
    ("dunder", expression("x.__class__"), 422, "syntax_error"),
    ("lambda", expression("lambda: 1"), 422, "syntax_error"),
    ("comprehension", expression("[x for x in (1,)]"), 422, "syntax_error"),
    ("open", expression(f"open('{SENTINEL}', 'w')"), 422, "syntax_error"),
    ("unknown call", expression("system(x)"), 422, "unknown_function"),
    # huge integers, powers, factorials
    ("power tower", expression("9**9**9**9"), 422, "limit_exceeded"),
    ("rational power", expression("(13/10)**6472416997"), 422, "limit_exceeded"),
    ("big exponent", expression("x^123456789"), 422, "limit_exceeded"),
    ("huge literal", expression("9" * 400), 422, "limit_exceeded"),
    ("inf literal", expression("1e999 * x"), 422, "limit_exceeded"),
    # factorial is gamma(x + 1) in float64 (factorial(10**10) is inf, at once); of a tower:
    ("factorial", expression("factorial(9**9**9) * x"), 422, "limit_exceeded"),
    ("bang", expression("100000!"), 422, "syntax_error"),
    # deep nesting and long inputs
    ("unary minuses", expression("-" * 5000 + "x"), 422, "limit_exceeded"),
    ("power chain", expression("**".join(["x"] * 5000)), 422, "limit_exceeded"),
    ("nested calls", expression("sin(" * 5000 + "x" + ")" * 5000), 422, "limit_exceeded"),
    ("parentheses and a fault", expression("(" * 5000 + "x" + ")" * 4999), 422, "syntax_error"),
    ("long input", expression("x+" * 40_000 + "x"), 422, "limit_exceeded"),
    ("long name", expression("a" * 30_000), 422, "limit_exceeded"),
    ("long variable", json.dumps({"expression": "1", "variables": {"v" * 10_000: []},
                                  "at": {"v" * 10_000: 1}}).encode(), 422, "limit_exceeded"),
    # characters
    ("cyrillic", expression("\u0455in(x)"), 422, "syntax_error"),
    ("fullwidth", expression("\uff58 + 1"), 422, "syntax_error"),
    ("NUL", expression("x\x00"), 422, "syntax_error"),
    ("bidi", expression("x\u202e + 1"), 422, "syntax_error"),
    ("emoji", expression("x + \U0001f600"), 422, "syntax_error"),
    # JSON
    ("malformed", b'{"expression": "x", ', 400, "invalid_json"),
    ("deep JSON", b'{"expression": "x", "at": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
     400, "invalid_json"),
    ("not UTF-8", b'{"expression": "\xff", "at": {"x": 1}}', 400, "invalid_json"),
    ("not an object", b"[1, 2]", 422, "invalid_request"),
    ("empty body", b"", 400, "invalid_json"),
    ("nested value", b'{"expression": "x", "at": {"x": [[[1]]]}}', 422, "invalid_request"),
    # numbers
    # NaN and Infinity are not JSON (RFC 8259): malformed, as issue 15 (item 8) asks
    ("NaN", b'{"expression": "x", "at": {"x": NaN}}', 400, "invalid_json"),
    ("Infinity", b'{"expression": "x", "at": {"x": -Infinity}}', 400, "invalid_json"),
    ("overflow", b'{"expression": "x", "at": {"x": 1e400}}', 422, "invalid_request"),
    ("string number", b'{"expression": "x", "at": {"x": "1"}}', 422, "invalid_request"),
    ("boolean", b'{"expression": "x", "at": {"x": true}}', 422, "invalid_request"),
    # shapes and emptiness
    ("wrong shape", json.dumps({"expression": "x", "variables": {"x": [3]},
                                "at": {"x": [1, 2]}}).encode(), 422, "shape_mismatch"),
    ("ragged", json.dumps({"expression": "x", "points": {"x": [[1, 2], [3]]}}).encode(), 422,
     "invalid_point"),
    ("matrix", json.dumps({"expression": "x", "variables": {"x": [2, 2]},
                           "at": {"x": [1, 2]}}).encode(), 422, "shape_mismatch"),
    ("empty expression", expression(""), 422, "empty_expression"),
    ("empty list", json.dumps({"expression": [], "at": {}}).encode(), 422, "invalid_request"),
    ("empty points", json.dumps({"expression": "x", "points": []}).encode(), 422,
     "invalid_point"),
    ("huge Hessian", json.dumps({"expression": "sum(x)", "variables": {"x": [100_000]},
                                 "at": {"x": [0] * 100_000}}).encode(), 422, "limit_exceeded"),
]


def test_five_thousand_parentheses_are_answered(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=BOUND) as client:
        response = client.post("/v1/differentiate", json={
            "expression": "(" * 5000 + "x^2" + ")" * 5000, "at": {"x": 3}})
        assert response.status_code == 200
        assert response.json()["gradient"] == [6.0]


@pytest.mark.parametrize(("body", "status", "code"), [c[1:] for c in CORPUS],
                         ids=[c[0] for c in CORPUS])
def test_attack_gets_a_problem(server_url: str, body: bytes, status: int, code: str) -> None:
    with httpx.Client(base_url=server_url, timeout=BOUND) as client:
        response = client.post("/v1/differentiate", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == status, response.text[:500]
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == code
        assert problem["status"] == status
        assert len(problem["detail"]) < 2000
        assert not SENTINEL.exists()
        assert client.get("/livez").status_code == 200
        healthy = client.post("/v1/differentiate", json={"expression": "x^2", "at": {"x": 3}})
        assert healthy.json()["gradient"] == [6.0]
