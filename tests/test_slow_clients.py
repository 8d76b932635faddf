"""Slow clients against a real server (``nabla serve``), with raw sockets to 127.0.0.1.

Uploads that trickle in do not hold the slots of requests being computed; headers and
bodies that come too slowly get a 408 problem and the connection closed; an idle new
connection is closed; a client that leaves mid-upload is a 499 in the metrics, not an
error in the log.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests import conftest
from tests.ops_support import Server, start_server

pytestmark = pytest.mark.slow

WARM = {"expression": "x^2 + 0.3817*x", "at": {"x": 3.0}}
LIMIT_SECONDS = 60.0  # how long a test waits for the server before it fails


def serve(tmp_path_factory: pytest.TempPathFactory, name: str,
          env: dict[str, str]) -> Iterator[Server]:
    server = start_server(log=tmp_path_factory.mktemp(name) / "server.log",
                          env={"NABLA_COMPILE_WORKERS": "1", **env})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Timeouts long enough that 64 slow uploads stay open throughout a test."""
    yield from serve(tmp_path_factory, "patient", {"NABLA_BODY_TIMEOUT_SECONDS": "120",
                                                   "NABLA_HEADER_TIMEOUT_SECONDS": "120"})


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Timeouts of 2 s and 1,000 bytes a second."""
    yield from serve(tmp_path_factory, "strict", {"NABLA_BODY_TIMEOUT_SECONDS": "2",
                                                  "NABLA_HEADER_TIMEOUT_SECONDS": "2",
                                                  "NABLA_MIN_UPLOAD_BYTES_PER_SECOND": "1000"})


def connect(server: Server) -> socket.socket:
    address = urlsplit(server.url)
    assert address.hostname == "127.0.0.1"
    return socket.create_connection((address.hostname, address.port or 80), timeout=10)


def upload_head(length: int = 5_000_000) -> bytes:
    return ("POST /v1/differentiate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def trickle_until_answered(sock: socket.socket, piece: bytes, interval: float) -> bytes:
    """Send ``piece`` one byte every ``interval`` s until the server answers or closes;
    everything it sent until it closed."""
    deadline = time.monotonic() + LIMIT_SECONDS
    for byte in (piece * 1000)[:int(LIMIT_SECONDS / interval)]:
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            return read_to_end(sock)
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return read_to_end(sock)
        assert time.monotonic() < deadline
    raise AssertionError(f"the server kept the connection open for {LIMIT_SECONDS} s")


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (which it must, within the limit)."""
    sock.settimeout(LIMIT_SECONDS)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def problem_of(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def in_progress(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r'^nabla_http_requests_in_progress\{method="POST"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_64_slow_uploads_leave_warm_requests_answering(patient: Server) -> None:
    with httpx.Client(base_url=patient.url, timeout=30) as client:
        assert client.post("/v1/differentiate", json=WARM).status_code == 200  # warm now
        uploads = [connect(patient) for _ in range(64)]
        stop = threading.Event()

        def trickle() -> None:  # 10 bytes a second on each
            while not stop.wait(0.1):
                for sock in uploads:
                    try:
                        sock.sendall(b"[")
                    except OSError:  # closed by the server: the test's asserts tell
                        return

        for sock in uploads:
            sock.sendall(upload_head())
        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            deadline = time.monotonic() + LIMIT_SECONDS
            while in_progress(patient) < 64:  # every upload has reached the app
                assert time.monotonic() < deadline
                time.sleep(0.05)
            answers = [client.post("/v1/differentiate", json=WARM) for _ in range(20)]
        finally:
            stop.set()
            sender.join()
            for sock in uploads:
                sock.close()
    assert [a.status_code for a in answers] == [200] * 20, answers[-1].text
    assert answers[-1].json()["value"] == 9 + 0.3817 * 3
    assert answers[-1].json()["gradient"] == [6 + 0.3817]


def test_headers_sent_a_byte_at_a_time_get_408_and_the_connection_closed(
        strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(b"POST /v1/differentiate HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = trickle_until_answered(sock, b"X-Slow: loris\r\n", 0.2)
    status, headers, problem = problem_of(answer)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert problem["code"] == "request_timeout"
    assert problem["limit"] == "header_timeout_seconds" and problem["limit_value"] == 2


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(strict: Server) -> None:
    with connect(strict) as sock:
        assert read_to_end(sock) == b""


def test_a_slow_body_gets_408_and_the_connection_closed(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(upload_head())
        answer = trickle_until_answered(sock, b"[", 0.1)  # 10 bytes a second
    status, headers, problem = problem_of(answer)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert problem["code"] == "request_timeout"
    assert problem["limit"] == "min_upload_bytes_per_second"
    assert "body_timeout_seconds" in str(problem["detail"])


def test_a_body_that_stops_gets_408(strict: Server) -> None:
    body = json.dumps(WARM).encode() + b" " * 3000  # 3 s more at the minimum rate
    with connect(strict) as sock:
        sock.sendall(upload_head(len(body)) + body[:-1])  # all but its last byte
        answer = read_to_end(sock)
    status, _, problem = problem_of(answer)
    assert status == 408 and problem["code"] == "request_timeout"
    assert problem["limit"] == "body_timeout_seconds" and problem["limit_value"] == 2


def test_a_client_that_leaves_mid_upload_is_499_not_an_error(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(upload_head() + b'{"expression": "x"')
        time.sleep(0.2)
    # Refused before routing: the route label is <unmatched>, as for 413.
    pattern = re.compile(r'^nabla_http_requests_total\{method="POST",'
                         r'route="[^"]*",status="(\d+)"\} (\S+)$', re.M)
    deadline = time.monotonic() + LIMIT_SECONDS
    while True:
        counts = dict(pattern.findall(httpx.get(f"{strict.url}/metrics", timeout=10).text))
        if "499" in counts or "500" in counts or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "499" in counts and "500" not in counts, counts
    log = strict.output()
    assert "unhandled error" not in log and "Exception in ASGI application" not in log


def test_slow_clients_are_not_logged_as_errors(strict: Server) -> None:
    assert '"level": "error"' not in strict.output()


def test_a_prompt_request_is_answered_after_the_slow_ones(strict: Server) -> None:
    response = httpx.post(f"{strict.url}/v1/differentiate", json=WARM, timeout=30)
    assert response.status_code == 200
    assert response.json()["value"] == 9 + 0.3817 * 3


def test_plain_uvicorn_with_the_h11_protocol_has_the_header_timeout() -> None:
    """The same timeout with uvicorn run by hand: ``--http app.ops.header_timeout:...``."""
    process, url = conftest.start_server(
        env={"NABLA_HEADER_TIMEOUT_SECONDS": "1", "NABLA_COMPILE_WORKERS": "1"},
        args=("--http", "app.ops.header_timeout:H11Protocol"))
    try:
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            answer = trickle_until_answered(sock, b"X-Slow: loris\r\n", 0.2)
    finally:
        process.terminate()
        process.wait(timeout=60)
    status, _, problem = problem_of(answer)
    assert status == 408 and problem["limit"] == "header_timeout_seconds"
