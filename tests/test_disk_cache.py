"""The persistent compile cache (issue 14, item 4): a restarted server loads what it compiled
before; a folder others can write to is refused; an empty NABLA_CACHE_DIR turns it off."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import httpx
import pytest

from app.config import Limits
from app.engine import disk_cache
from app.engine.compilation import CompileSpec, compile_spec
from app.engine.xla import KINDS
from tests.ops_support import start_server

EXPRESSION = {"expression": "x*sin(y)*0.4137 + y^3", "at": {"x": 1.5, "y": -0.25}}
EXPECTED = 1.5 * -0.24740395925452294 * 0.4137 + (-0.25) ** 3  # sin(-0.25) to 17 digits


def persistent(metrics: str) -> dict[str, float]:
    found = re.findall(r'^nabla_persistent_cache_compiles_total\{outcome="(\w+)"\} (\S+)$',
                       metrics, re.MULTILINE)
    return {outcome: float(value) for outcome, value in found}


def serve_once(folder: str, log: Path) -> tuple[float, dict[str, float]]:
    """Start a server on ``folder`` (no first tier: the first request compiles with XLA),
    ask for EXPRESSION, and stop; its value and the persistent-cache counts."""
    server = start_server(log=log, env={"NABLA_CACHE_DIR": folder, "NABLA_INTERPRET": "false",
                                        "NABLA_COMPILE_WORKERS": "1"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            answer = client.post("/v1/differentiate", json=EXPRESSION)
            assert answer.status_code == 200, answer.text
            counts = persistent(client.get("/metrics").text)
    finally:
        server.stop()
    return answer.json()["value"], counts


def test_a_restarted_server_loads_what_it_compiled_before(tmp_path: Path) -> None:
    folder = tmp_path / "cache"  # missing: the server creates it, 0700
    value, counts = serve_once(str(folder), tmp_path / "first.log")
    assert value == pytest.approx(EXPECTED, rel=1e-14)
    assert counts == {"miss": 1.0}
    assert folder.stat().st_mode & 0o777 == 0o700
    written = sorted(os.listdir(folder))
    assert len(written) >= 2  # the workers' warm-up program and this one

    value, counts = serve_once(str(folder), tmp_path / "second.log")
    assert value == pytest.approx(EXPECTED, rel=1e-14)
    assert counts == {"hit": 1.0}  # XLA's executable came from the folder
    assert sorted(os.listdir(folder)) == written  # and nothing new was compiled into it


def test_a_folder_others_can_write_to_is_refused(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    for mode in (0o777, 0o770, 0o702):
        folder = tmp_path / f"open{mode:o}"
        folder.mkdir()
        folder.chmod(mode)
        with caplog.at_level(logging.WARNING, logger=disk_cache.__name__):
            assert disk_cache.resolve_folder(str(folder)) is None
        assert "group or others can write to it" in caplog.text
        caplog.clear()
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o755)  # others may read, not write: accepted
    assert disk_cache.resolve_folder(str(mine)) == str(mine.resolve())
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert disk_cache.check_folder(a_file) == "it is not a directory"


def test_a_folder_another_user_owns_is_refused(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    owner = os.stat(tmp_path).st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    assert disk_cache.check_folder(tmp_path) == f"another user (uid {owner}) owns it"


def test_the_default_folder_and_an_empty_value(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache.default_folder() == tmp_path / "xdg" / "nabla"
    assert disk_cache.resolve_folder(None) == str((tmp_path / "xdg" / "nabla").resolve())
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert disk_cache.default_folder() == tmp_path / "home" / ".cache" / "nabla"
    folder = disk_cache.resolve_folder("")
    assert folder is None  # off
    disk_cache.enable(folder)
    spec = CompileSpec(("x*0.25 + 1",), False, None, (("x", ()),), KINDS, None, 1)
    assert not compile_spec(spec, Limits()).cached
    assert not (tmp_path / "home").exists()  # nothing created, nothing written


def test_the_least_recently_used_entries_are_pruned(tmp_path: Path) -> None:
    for i in range(5):
        entry = tmp_path / f"{i}.xla"
        entry.write_bytes(b"x" * 100)
        os.utime(entry, (1000.0 + i, 1000.0 + i))  # 0 is the least recently used
    disk_cache.prune(tmp_path, 500)
    assert len(list(tmp_path.glob("*.xla"))) == 5  # within the bound: nothing deleted
    disk_cache.prune(tmp_path, 350)
    assert sorted(p.name for p in tmp_path.glob("*.xla")) == ["2.xla", "3.xla", "4.xla"]
