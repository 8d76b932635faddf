"""The image's contents without a container engine: the wheel, installed into a fresh
virtual environment away from the source tree, serving through the Dockerfile's own CMD."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import dockerfile
from tests.ops_support import ROOT, Server, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PLAYGROUND = ROOT / "app" / "static" / "index.html"


def dockerignored(relative: str) -> bool:
    """Whether ``.dockerignore`` keeps ``relative`` (a path in the context) out of the build."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = relative.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(c, p) or fnmatch.fnmatch(c, p.removeprefix("**/"))
               or fnmatch.fnmatch(parts[-1], p.removeprefix("**/"))
               for p in patterns for c in candidates)


def build_context(target: Path) -> Path:
    """The files the Dockerfile COPYs into its build, as the build context would send them."""
    target.mkdir()
    for source in dict.fromkeys(dockerfile.copy_sources()):
        origin = ROOT / source
        assert origin.exists(), f"the Dockerfile copies {source}, which does not exist"
        assert not dockerignored(source.rstrip("/")), f".dockerignore excludes {source}"
        if origin.is_dir():
            shutil.copytree(origin, target / source, ignore=lambda folder, names: [
                n for n in names
                if dockerignored(str((Path(folder) / n).relative_to(ROOT)))])
        else:
            (target / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / source)
    return target


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, the fresh venv where it is installed), built away from the source tree."""
    work = tmp_path_factory.mktemp("packaging")
    context = build_context(work / "context")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The fresh venv's own pip builds and installs: the project's .venv (made by uv) has none.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"),
                    str(context)], check=True)
    (wheel,) = (work / "dist").glob("nabla-*.whl")
    # As the image does: the runtime lock with its hashes, then the wheel alone (pip's cache
    # makes repeated runs fast).
    subprocess.run([*pip, "install", "--quiet", "--require-hashes", "-r",
                    str(context / "requirements" / "serve.txt")], check=True)
    subprocess.run([*pip, "install", "--quiet", "--no-deps", str(wheel)], check=True)
    yield wheel, venv


@pytest.fixture(scope="module")
def server(install: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """The Dockerfile's CMD, with its ENV, run from the fresh venv in an empty folder."""
    _, venv = install
    argv = dockerfile.cmd()
    executable = venv / "bin" / argv[0]
    assert executable.exists(), f"CMD runs {argv[0]!r}, which the wheel does not install"
    run_dir = tmp_path_factory.mktemp("run")
    image_env = {k: v for k, v in dockerfile.env().items() if k != "PATH"}
    env = {**image_env, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "VIRTUAL_ENV": str(venv), "PYTHONPATH": ""}
    running = start_server([str(executable), *argv[1:]], log=run_dir / "server.log",
                           env=env, cwd=run_dir)
    yield running
    running.stop()


def test_wheel_holds_the_package_data(install: tuple[Path, Path]) -> None:
    wheel, _ = install
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "app/language/grammar.lark" in names
    assert "app/main.py" in names
    assert "schemas/differentiate.py" in names
    static = ROOT / "app" / "static"
    if static.exists():
        expected = {str(p.relative_to(ROOT)) for p in static.rglob("*") if p.is_file()
                    and "__pycache__" not in p.parts}
        assert expected <= names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "nabla = app.client.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_package_is_not_the_source_tree(install: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    _, venv = install
    found = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import app, schemas; print(app.__file__); print(schemas.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    for line in found.stdout.split():
        assert Path(line).is_relative_to(venv)


def test_api_answers(server: Server) -> None:
    response = httpx.post(f"{server.url}/v1/differentiate", timeout=120, json={
        "expression": "2*dot(x, x)", "variables": {"x": [4]}, "at": {"x": [0, 1, 2, 3]}})
    assert response.status_code == 200
    assert response.json()["gradient"] == [0.0, 4.0, 8.0, 12.0]
    problem = httpx.post(f"{server.url}/v1/differentiate", timeout=60,
                         json={"expression": "sin(", "at": {"x": 1}})
    assert problem.status_code == 422
    assert problem.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes_answer(server: Server, path: str) -> None:
    assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200


def test_docs_answer(server: Server) -> None:
    docs = httpx.get(f"{server.url}/docs", timeout=10)
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert "/v1/differentiate" in spec["paths"]


def test_metrics_answer(server: Server) -> None:
    httpx.get(f"{server.url}/livez", timeout=10)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'nabla_http_requests_total{method="GET",route="/livez",status="200"}' in text
    assert "nabla_compile_cache_misses_total" in text


def test_playground_answers_when_the_source_has_one(server: Server) -> None:
    response = httpx.get(f"{server.url}/", timeout=10)
    if PLAYGROUND.exists():
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert response.status_code == 404


def test_healthcheck_command_passes(server: Server, install: tuple[Path, Path]) -> None:
    _, venv = install
    (check,) = [i for i in dockerfile.final_stage() if i.keyword == "HEALTHCHECK"]
    argv = dockerfile.exec_form(check)
    port = server.url.rsplit(":", 1)[1]
    env = {**os.environ, "NABLA_PORT": port}
    assert subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], env=env,
                          timeout=30).returncode == 0
    env["NABLA_PORT"] = "9"  # nothing listens there: the check must fail
    assert subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], env=env,
                          capture_output=True, timeout=30).returncode != 0
