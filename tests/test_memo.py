"""The response memo: identical requests get identical bytes; it stays within its bounds."""

from __future__ import annotations

import httpx
import pytest

from app.memo import ResponseMemo


def test_memo_is_bounded_by_bytes_and_item_size() -> None:
    memo = ResponseMemo(max_bytes=100, max_item_bytes=40)
    memo.put((b"a", "", ""), b"x" * 30, "application/json")
    memo.put((b"b", "", ""), b"y" * 30, "application/json")
    memo.put((b"c", "", ""), b"z" * 30, "application/json")  # 3 x 31 bytes fit
    memo.put((b"d", "", ""), b"w" * 30, "application/json")  # evicts the oldest
    assert memo.get((b"a", "", "")) is None
    assert memo.get((b"d", "", "")) == (b"w" * 30, "application/json")
    memo.put((b"e", "", ""), b"v" * 50, "application/json")  # too big to keep
    assert memo.get((b"e", "", "")) is None
    assert len(memo) == 3


@pytest.mark.slow
def test_identical_requests_get_identical_answers_and_errors_are_not_kept(
        api: httpx.Client) -> None:
    body = {"expression": "x^3 - 2*x", "points": {"x": [0.5, 1.5]}}
    first = api.post("/v1/differentiate", json=body)
    second = api.post("/v1/differentiate", json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    accept = api.post("/v1/differentiate", json=body, headers={"accept": "application/msgpack"})
    assert accept.headers["content-type"] == "application/msgpack"  # Accept is in the key
    for _ in range(2):
        refused = api.post("/v1/differentiate", json={"expression": "x +", "at": {"x": 1}})
        assert refused.status_code == 422
