"""The client and the ``nabla`` command past the Hessian: orders, partials, Taylor
polynomials, checks and implicit derivatives, against a real server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest

from app.client import NablaClient
from app.client.cli import main
from tests.ops_support import Server, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(log=tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.stop()


def test_client_passes_the_fields_past_the_hessian(server: Server) -> None:
    with NablaClient(server.url) as client:
        body = client.differentiate("x^3*y^2", at={"x": 2, "y": 3}, derivatives=["value"],
                                    partials=[{"x": 2, "y": 1}], order=3)
        assert abs(body["partials"][0] - 12 * 2 * 3) < 1e-9  # 6x * 2y
        answer = client.implicit("x^2 + y^2 = 1", "y", {"x": 0.6, "y": 0.8}, order=2)
        assert abs(answer["derivatives"][1] + 1 / 0.8**3) < 1e-12


def test_cli_orders_partials_taylor(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "x^3*y^2", "--at", "x=2", "--at", "y=3", "--order", "3",
                   "--partial", "x=2,y=1", "--json", "--url", server.url, "-d", "value"])
    body = json.loads(capsys.readouterr().out)
    assert status == 0 and body["partials"] == [pytest.approx(72.0)]  # 6x * 2y
    status = main(["differentiate", "sin(x)", "--at", "x=0", "--taylor", "5",
                   "--remainder-at", "x=1", "--url", server.url, "-d", "value"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Taylor polynomial of order 5: x - 0.16666" in out
    assert "remainder at {'x': 1.0}" in out
    status = main(["differentiate", "exp(x)", "--at", "x=0", "--order", "4", "--direction",
                   "x=2", "--json", "--url", server.url, "-d", "value"])
    body = json.loads(capsys.readouterr().out)
    assert body["directional"] == [pytest.approx(2.0 ** j) for j in range(1, 5)]


def test_cli_check_my_answer(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "x^2*y", "--at", "x=3", "--at", "y=2", "--check",
                   "--claim", "2*x*y", "--claim", "x", "--url", server.url, "-d", "value"])
    out = capsys.readouterr().out
    assert status == 0
    assert "check: your gradient does NOT agree" in out
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()
            if line.split() and line.split()[0] in ("x", "y")}
    assert rows == {"x": "yes", "y": "NO"}


def test_cli_implicit(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["implicit", "x^2 + y^2 = 1", "--dependent", "y", "--at", "x=0.6",
                   "--at", "y=0.8", "--order", "2", "--url", server.url])
    out = capsys.readouterr().out
    assert status == 0
    lines = [line.split() for line in out.splitlines()]
    assert ["dy/dx", str(-0.6 / 0.8)] in lines or any(
        line[:1] == ["dy/dx"] and math.isclose(float(line[1]), -0.75) for line in lines)
    status = main(["implicit", "x^2 + y^2 = 1", "--dependent", "y", "--at", "x=1",
                   "--at", "y=0", "--url", server.url])
    assert status == 1
    assert "not define it as a function" in capsys.readouterr().err
