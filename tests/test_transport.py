"""The binary transport: MessagePack in and out gives the numbers JSON gives."""

from __future__ import annotations

import httpx
import numpy as np
import ormsgpack
import pytest

pytestmark = pytest.mark.slow

BODY = {"expression": "sin(x) * y", "points": {"x": [0.0, 1.0, 2.0], "y": [1.0, 2.0, 3.0]}}


def test_msgpack_in_and_out_matches_json(api: httpx.Client) -> None:
    as_json = api.post("/v1/differentiate", json=BODY).json()
    response = api.post("/v1/differentiate", content=ormsgpack.packb(BODY),
                        headers={"content-type": "application/msgpack",
                                 "accept": "application/msgpack"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/msgpack"
    packed = ormsgpack.unpackb(response.content)
    assert packed["coordinates"] == as_json["coordinates"]
    for field in ("value", "gradient", "hessian"):
        np.testing.assert_array_equal(np.asarray(packed[field]), np.asarray(as_json[field]))


def test_msgpack_answer_to_a_json_request_keeps_nan_and_reports_it(api: httpx.Client) -> None:
    response = api.post("/v1/differentiate", json={"expression": "log(x)",
                                                    "points": {"x": [1.0, -1.0]},
                                                    "derivatives": ["value"]},
                        headers={"accept": "application/msgpack"})
    packed = ormsgpack.unpackb(response.content)
    assert packed["value"][0] == 0.0 and np.isnan(packed["value"][1])
    assert packed["nonfinite"] == [{"field": "value", "index": [1], "kind": "nan"}]


def test_malformed_msgpack_is_400(api: httpx.Client) -> None:
    response = api.post("/v1/differentiate", content=b"\xc1\xc1",
                        headers={"content-type": "application/msgpack"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_msgpack_body_is_validated_like_json(api: httpx.Client) -> None:
    response = api.post("/v1/differentiate",
                        content=ormsgpack.packb({"expression": "x", "at": {"x": "1"}}),
                        headers={"content-type": "application/msgpack"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_other_media_types_are_415(api: httpx.Client) -> None:
    response = api.post("/v1/differentiate", content=b"expression=x",
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert "application/msgpack" in response.json()["detail"]
