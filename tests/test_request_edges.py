"""Edges of the request body: inputs that answered 500, or were accepted though malformed,
get a 4xx problem that says what to change (in process, through the whole app)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import ormsgpack
import pytest

from app.api.packing import Malformed, check_one_object
from tests.inprocess import InProcess

MSGPACK = "application/msgpack"


@pytest.fixture(scope="module")
def nabla(event_loop_thread: asyncio.AbstractEventLoop) -> Iterator[InProcess]:
    app = InProcess(event_loop_thread)
    yield app
    app.close()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


def test_an_empty_grid_is_422(nabla: InProcess) -> None:
    found = problem(nabla.post(b'{"expression": "1", "grid": {}}'), 422, "invalid_request")
    assert found["detail"].startswith("grid:")


@pytest.mark.parametrize("size", [2**64, 2**64 - 1, 2**63 + 5, 2**63, 2**63 - 1, 10**30,
                                  1_000_001],
                         ids=["2^64", "2^64-1", "2^63+5", "2^63", "2^63-1", "1e30", "limit+1"])
def test_a_declared_size_over_the_limit_is_422_naming_it(nabla: InProcess, size: int) -> None:
    body = json.dumps({"expression": "sum(x)", "variables": {"x": [size]}, "at": {"x": [1]}})
    found = problem(nabla.post(body.encode()), 422, "limit_exceeded")
    assert found["limit"] == "max_coordinates" and found["limit_value"] == 1_000_000
    assert str(size) in found["detail"]


def test_declared_sizes_count_together(nabla: InProcess) -> None:
    body = {"expression": "sum(x) + sum(y)", "variables": {"x": [600_000], "y": [600_000]},
            "at": {"x": [1], "y": [1]}}
    found = problem(nabla.post(json.dumps(body).encode()), 422, "limit_exceeded")
    assert found["limit"] == "max_coordinates"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ['"at": {"x": %s}', '"at": {"x": [1, %s]}',
                                   '"points": {"x": [0, %s]}'], ids=["at", "vector", "points"])
def test_nan_and_infinity_tokens_are_malformed_json(nabla: InProcess, token: str,
                                                    where: str) -> None:
    body = '{"expression": "sum(x)", ' + where.replace("%s", token) + "}"
    found = problem(nabla.post(body.encode()), 400, "invalid_json")
    assert token.lstrip("-") in found["detail"]


def test_a_number_too_large_for_float64_is_still_422(nabla: InProcess) -> None:
    problem(nabla.post(b'{"expression": "x", "at": {"x": 1e999}}'), 422, "invalid_request")


def test_a_string_nan_is_still_a_validation_error(nabla: InProcess) -> None:
    problem(nabla.post(b'{"expression": "x", "at": {"x": "NaN"}}'), 422, "invalid_request")


@pytest.mark.parametrize("num", ["true", "2.0", '"3"', "false"])
def test_grid_num_is_a_strict_integer(nabla: InProcess, num: str) -> None:
    body = '{"expression": "x", "grid": {"x": {"start": 0, "stop": 1, "num": NUM}}}'.replace(
        "NUM", num)
    found = problem(nabla.post(body.encode()), 422, "invalid_request")
    assert found["detail"].startswith("grid.x.num")


def test_grid_num_as_an_integer_works(nabla: InProcess) -> None:
    body = b'{"expression": "x^2", "grid": {"x": {"start": 0, "stop": 1, "num": 3}}}'
    response = nabla.post(body)
    assert response.status_code == 200, response.text
    assert response.json()["value"] == [0.0, 0.25, 1.0]


def test_a_grid_wider_than_float64_spans_is_evenly_spaced(nabla: InProcess) -> None:
    """stop - start overflows: the axis is still start, the midpoint and stop, not NaN."""
    big = 1.7976931348623157e308
    body = {"expression": "x", "grid": {"x": {"start": -big, "stop": big, "num": 3}},
            "derivatives": ["value"]}
    response = nabla.post(json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {"coordinates": ["x"], "value": [-big, 0.0, big]}


def test_a_plot_wider_than_float64_spans_is_422(nabla: InProcess) -> None:
    big = 1.7976931348623157e308
    response = nabla.request("GET", "/v1/plot", params={"expression": "x", "start": -big,
                                                        "stop": big})
    assert "float64" in problem(response, 422, "bad_range")["detail"]


MSGPACK_BODY = {"expression": "x*y", "at": {"x": 2.0, "y": 3.0}}


def test_a_msgpack_body_still_works(nabla: InProcess) -> None:
    response = nabla.post(ormsgpack.packb(MSGPACK_BODY), MSGPACK)
    assert response.status_code == 200, response.text
    assert response.json()["value"] == 6.0


@pytest.mark.parametrize("tail", [b"\x00", b"\xc0", ormsgpack.packb(MSGPACK_BODY)],
                         ids=["zero", "nil", "a second object"])
def test_bytes_after_a_msgpack_object_are_400(nabla: InProcess, tail: bytes) -> None:
    found = problem(nabla.post(ormsgpack.packb(MSGPACK_BODY) + tail, MSGPACK), 400,
                    "invalid_json")
    assert f"{len(tail)} bytes follow" in found["detail"]


def pairs(*items: tuple[bytes, bytes]) -> bytes:
    """A map of already encoded keys and values, as MessagePack writes it (fixmap)."""
    return bytes([0x80 | len(items)]) + b"".join(k + v for k, v in items)


def fixstr(text: str) -> bytes:
    return bytes([0xa0 | len(text)]) + text.encode()


@pytest.mark.parametrize("body", [
    pairs((fixstr("expression"), fixstr("x")), (fixstr("expression"), fixstr("y")),
          (fixstr("at"), pairs((fixstr("y"), b"\x01")))),
    pairs((fixstr("expression"), fixstr("x")),
          (fixstr("at"), pairs((fixstr("x"), b"\x01"), (b"\xd9\x01x", b"\x02")))),
], ids=["top level", "nested, as str8"])
def test_a_msgpack_key_given_twice_is_400(nabla: InProcess, body: bytes) -> None:
    found = problem(nabla.post(body, MSGPACK), 400, "invalid_json")
    assert "appears twice" in found["detail"]


def test_msgpack_scan_reads_every_kind_and_deep_nesting() -> None:
    every = {"s": "é" * 40, "b": b"\x00" * 300, "i": [0, -1, 255, -200, 70_000, 2**40, -2**40,
                                                     2**64 - 1], "f": [1.5] * 20,
             "n": None, "t": True, "m": {"k": [[], {}]}, "l": "x" * 70_000}
    check_one_object(ormsgpack.packb(every))
    check_one_object(b"\xd4\x01\x02")  # fixext 1
    check_one_object(b"\xc7\x03\x01abc")  # ext 8
    check_one_object(b"\x91" * 100_000 + b"\x01")  # nested deeper than any recursion
    with pytest.raises(Malformed, match="ends in the middle"):
        check_one_object(b"\x92\x01")
    with pytest.raises(Malformed, match="0xc1"):
        check_one_object(b"\xc1")
