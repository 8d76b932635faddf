"""The client and the CLI try 429 and 503 again, after the wait Retry-After asks (capped),
up to a bound; never another 4xx. A mock transport scripts the answers, and the sleep
function is injected, so the waits are asserted without any clock."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.client import NablaAPIError, NablaClient, RetryPolicy, cli

OK = {"coordinates": ["x"], "value": 1.0, "gradient": [2.0], "hessian": [[2.0]]}
Answer = tuple[int, dict[str, str]]


def problem(status: int, code: str) -> dict[str, Any]:
    return {"type": f"/problems/{code}", "title": "Nope", "status": status,
            "detail": "scripted", "code": code}


class Script:
    """A mock transport that gives the scripted answers in turn (then 200) and records the
    requests; ``waits`` records the client's sleeps."""

    def __init__(self, *answers: Answer) -> None:
        self.answers: Iterator[Answer] = iter(answers)
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, headers = next(self.answers, (200, {}))
        if status == 200:
            return httpx.Response(200, json=OK)
        return httpx.Response(status, json=problem(status, f"code_{status}"), headers=headers)

    def client(self, **options: Any) -> NablaClient:
        return NablaClient("http://nabla.test", transport=self.transport,
                           sleep=self.waits.append, **options)


def differentiate(client: NablaClient) -> dict[str, Any]:
    return client.differentiate("x^2", at={"x": 1})


def test_503_and_429_are_tried_again_after_their_retry_after() -> None:
    script = Script((503, {"Retry-After": "2"}), (429, {"Retry-After": "1"}))
    assert differentiate(script.client()) == OK
    assert len(script.requests) == 3
    assert script.waits == [2.0, 1.0]
    assert {r.content for r in script.requests} == {script.requests[0].content}


def test_the_wait_is_capped() -> None:
    script = Script((429, {"Retry-After": "3600"}), (503, {"Retry-After": "45"}))
    differentiate(script.client(retry=RetryPolicy(max_wait=10)))
    assert script.waits == [10.0, 10.0]


@pytest.mark.parametrize("header", [{}, {"Retry-After": "Fri, 31 Dec 1999 23:59:59 GMT"},
                                    {"Retry-After": "-3"}, {"Retry-After": "nan"}],
                         ids=["none", "http-date", "negative", "nan"])
def test_without_a_usable_retry_after_the_waits_double(header: dict[str, str]) -> None:
    script = Script(*[(503, header)] * 3)
    differentiate(script.client(retry=RetryPolicy(retries=3, backoff=0.5)))
    assert script.waits == [0.5, 1.0, 2.0]


def test_the_retries_are_bounded_then_the_last_answer_is_raised() -> None:
    script = Script(*[(503, {"Retry-After": "1"})] * 10)
    with pytest.raises(NablaAPIError) as raised:
        differentiate(script.client(retry=RetryPolicy(retries=2)))
    assert raised.value.status == 503 and raised.value.code == "code_503"
    assert raised.value.retry_after == 1.0
    assert len(script.requests) == 3 and script.waits == [1.0, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 415, 422, 500, 502])
def test_other_errors_are_never_tried_again(status: int) -> None:
    script = Script((status, {"Retry-After": "1"}))
    with pytest.raises(NablaAPIError) as raised:
        differentiate(script.client())
    assert raised.value.status == status
    assert len(script.requests) == 1 and script.waits == []


def test_no_retries_when_asked_for_none() -> None:
    script = Script((429, {"Retry-After": "1"}))
    with pytest.raises(NablaAPIError):
        differentiate(script.client(retry=RetryPolicy(retries=0)))
    assert len(script.requests) == 1 and script.waits == []


def test_each_retry_is_announced_before_its_wait() -> None:
    heard: list[tuple[int, float]] = []
    script = Script((503, {"Retry-After": "4"}))
    differentiate(script.client(on_retry=lambda error, wait: heard.append((error.status, wait))))
    assert heard == [(503, 4.0)]


def test_the_api_key_is_sent_as_a_bearer_token() -> None:
    script = Script()
    differentiate(script.client(api_key="k-123"))
    assert script.requests[0].headers["authorization"] == "Bearer k-123"
    script = Script()
    differentiate(script.client())
    assert "authorization" not in script.requests[0].headers


@pytest.mark.parametrize("options", [{"retries": -1}, {"max_wait": -1.0},
                                     {"backoff": float("nan")}])
def test_a_policy_refuses_negative_numbers(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        RetryPolicy(**options)


# The CLI -----------------------------------------------------------------------------------

@pytest.fixture
def scripted_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Script]:
    """The CLI's client, on a script's transport and sleep."""
    def use(*answers: Answer) -> Script:
        script = Script(*answers)
        monkeypatch.setattr(cli, "NablaClient", functools.partial(
            NablaClient, transport=script.transport, sleep=script.waits.append))
        return script

    return use


def test_cli_retries_and_says_so(scripted_cli: Callable[..., Script],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    script = scripted_cli((503, {"Retry-After": "5"}), (429, {"Retry-After": "2"}))
    assert cli.main(["differentiate", "x^2", "--at", "x=1", "--json",
                     "--max-retry-wait", "3"]) == 0
    assert script.waits == [3.0, 2.0]
    captured = capsys.readouterr()
    assert json.loads(captured.out) == OK
    assert "503 Nope (code_503); trying again in 3 s" in captured.err
    assert "429 Nope (code_429); trying again in 2 s" in captured.err


def test_cli_gives_up_after_its_retries(scripted_cli: Callable[..., Script],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    script = scripted_cli(*[(503, {"Retry-After": "1"})] * 5)
    assert cli.main(["differentiate", "x^2", "--at", "x=1", "--retries", "1"]) == 1
    assert len(script.requests) == 2 and script.waits == [1.0]
    assert "nabla: 503 Nope: scripted" in capsys.readouterr().err


def test_cli_never_retries_a_client_error(scripted_cli: Callable[..., Script]) -> None:
    script = scripted_cli((422, {}))
    assert cli.main(["differentiate", "x^2", "--at", "x=1"]) == 1
    assert len(script.requests) == 1 and script.waits == []


def test_cli_reads_the_api_key_from_the_environment(scripted_cli: Callable[..., Script],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NABLA_API_KEY", "k-env")
    script = scripted_cli()
    assert cli.main(["differentiate", "x^2", "--at", "x=1"]) == 0
    assert script.requests[0].headers["authorization"] == "Bearer k-env"


@pytest.mark.parametrize("argv", [["--retries", "-1"], ["--retries", "x"],
                                  ["--max-retry-wait", "-2"], ["--max-retry-wait", "inf"]])
def test_cli_refuses_bad_retry_options(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["differentiate", "x^2", "--at", "x=1", *argv])
    assert exited.value.code == 2
