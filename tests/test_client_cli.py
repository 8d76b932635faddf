"""The Python client and the ``nabla`` command, against a real server (``nabla serve``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from app.client import NablaAPIError, NablaClient
from app.client.cli import build_request, main
from tests.ops_support import Server, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(log=tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.stop()


@pytest.fixture()
def client(server: Server) -> Iterator[NablaClient]:
    with NablaClient(server.url) as c:
        yield c


def test_client_differentiates_a_vector_variable(client: NablaClient) -> None:
    result = client.differentiate("2*dot(x, x)", variables={"x": [4]}, at={"x": [0, 1, 2, 3]})
    assert result["coordinates"] == ["x[0]", "x[1]", "x[2]", "x[3]"]
    assert result["value"] == 28.0
    assert result["gradient"] == [0.0, 4.0, 8.0, 12.0]
    assert result["hessian"][2] == [0.0, 0.0, 4.0, 0.0]


def test_client_sends_a_list_as_a_vector_valued_function(client: NablaClient) -> None:
    result = client.differentiate(["x*y", "x + y^2"], at={"x": 2, "y": 3},
                                  derivatives=["value", "gradient"])
    assert result == {"coordinates": ["x", "y"], "value": [6.0, 11.0],
                      "jacobian": [[3.0, 2.0], [1.0, 6.0]]}


def test_client_raises_a_typed_error_with_the_problem(client: NablaClient) -> None:
    with pytest.raises(NablaAPIError) as caught:
        client.differentiate("sin(x +* y)", at={"x": 1, "y": 2})
    error = caught.value
    assert error.status == 422
    assert error.problem["status"] == 422
    assert error.position == 7
    assert error.detail and error.detail == error.problem["detail"]


def test_client_reports_readiness(client: NablaClient) -> None:
    assert client.ready()


def test_cli_prints_a_table(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "2*dot(x, x)", "--var", "x=4", "--at", "x=0,1,2,3",
                   "--url", server.url])
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["value"]
    assert lines[1].split() == ["f", "28.0"]
    assert ["x[3]", "12.0"] in [line.split() for line in lines]
    assert ["hessian", "x[0]", "x[1]", "x[2]", "x[3]"] in [line.split() for line in lines]
    assert ["x[1]", "0.0", "4.0", "0.0", "0.0"] in [line.split() for line in lines]


def test_cli_json_is_the_api_answer(server: Server, client: NablaClient,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "x*y", "x + y^2", "--at", "x=2", "--at", "y=3", "--json",
                   "--url", server.url])
    assert status == 0
    assert json.loads(capsys.readouterr().out) == client.differentiate(
        ["x*y", "x + y^2"], at={"x": 2, "y": 3})


def test_cli_shows_where_an_expression_is_wrong(server: Server,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "sin(x +* y)", "--at", "x=1", "--at", "y=2",
                   "--url", server.url])
    err = capsys.readouterr().err
    assert status == 1
    assert "422" in err
    expression_line, caret_line = err.splitlines()[-2:]
    assert expression_line[caret_line.index("^")] == "*"


def test_cli_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "x", "--at", "x=1", "--url", "http://127.0.0.1:9"])
    assert status == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    pytest.param(["differentiate", "x", "--at", "x=one"], id="not-a-number"),
    pytest.param(["differentiate", "x", "--at", "x=nan"], id="not-finite"),
    pytest.param(["differentiate", "x", "--at", "=1"], id="no-name"),
    pytest.param(["differentiate", "x", "--var", "x=0", "--at", "x=1"], id="zero-length"),
    pytest.param(["differentiate", "x", "--var", "x=2x2x2", "--at", "x=1"], id="three-axes"),
    pytest.param(["differentiate", "x", "--at", "x=1,2;a"], id="bad-row"),
    pytest.param(["frobnicate"], id="unknown-command"),
])
def test_cli_refuses_bad_command_lines(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_cli_infers_scalars_and_vectors_from_the_point() -> None:
    request = build_request(["x*y"], [("x", "1"), ("y", "2,3")], [], None)
    assert request == {"expression": "x*y", "at": {"x": 1.0, "y": [2.0, 3.0]}}


def test_cli_declared_variables_come_first() -> None:
    request = build_request(["x[0]*y", "y"], [("y", "2"), ("x", "5")], [("x", "1")],
                            "value, gradient")
    assert request["expression"] == ["x[0]*y", "y"]
    assert list(request["variables"].items()) == [("x", [1]), ("y", [])]
    assert request["at"] == {"y": 2.0, "x": [5.0]}
    assert request["derivatives"] == ["value", "gradient"]


def test_cli_reads_matrices_with_rows_separated_by_semicolons() -> None:
    request = build_request(["logdet(X) + y"], [("X", "2,1;1,3"), ("y", "1")],
                            [("X", "2x2")], None)
    assert request["variables"] == {"X": [2, 2], "y": []}
    assert request["at"] == {"X": [[2.0, 1.0], [1.0, 3.0]], "y": 1.0}


def test_cli_prints_the_gradient_of_a_matrix_variable(
        server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["differentiate", "logdet(X)", "--at", "X=2,1;1,3", "-d", "value,gradient",
                   "--url", server.url])
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    assert ["X[1,1]", "0.4"] in lines


def test_cli_table_of_a_matrix_valued_f_names_each_entry() -> None:
    from app.client.table import render_result

    result = {"coordinates": ["X[0,0]", "X[0,1]", "X[1,0]", "X[1,1]"],
              "value": [[1.0, 2.0], [3.0, 4.0]],
              "jacobian": [[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
                           [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]]}
    lines = [line.split() for line in render_result(result).splitlines()]
    assert ["f[1,0]", "3.0"] in lines
    assert ["f[1,1]", "0.0", "0.0", "0.0", "1.0"] in lines
