"""The set-up is reproducible: the lock files in requirements/ pin every dependency that
pyproject.toml declares, with hashes, and the image and scripts/setup.sh install from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import dockerfile
from tests.ops_support import ROOT

PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
LOCKS = {"serve": ([], ROOT / "requirements" / "serve.txt"),
         "test": (["test", "lint", "bench"], ROOT / "requirements" / "test.txt")}
#: One pinned requirement: name, version, environment marker (or ""), then its hashes.
PIN = re.compile(
    r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\\n((?:\s+--hash=\S+.*\n)+)", re.M)


def pins(lock: Path) -> list[tuple[str, str, str, int]]:
    """(name, version, marker, number of hashes) of every package the lock file pins."""
    return [(canonicalize_name(name), version, (marker or "").strip(), hashes.count("--hash="))
            for name, version, marker, hashes in PIN.findall(lock.read_text())]


@pytest.mark.parametrize("mode", list(LOCKS))
def test_the_lock_pins_every_declared_dependency_with_hashes(mode: str) -> None:
    extras, lock = LOCKS[mode]
    declared = [Requirement(r) for r in PROJECT["dependencies"]]
    declared += [Requirement(r) for e in extras for r in PROJECT["optional-dependencies"][e]]
    pinned = pins(lock)
    assert len(pinned) == sum(1 for line in lock.read_text().splitlines()
                              if re.match(r"[A-Za-z0-9]", line)), "a line without hashes"
    assert all(count >= 1 for *_, count in pinned)
    # The versions this interpreter installs (the lock is universal: markers choose).
    versions = {name: version for name, version, marker, _ in pinned
                if not marker or Marker(marker).evaluate()}
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{name} is declared but not in {lock.name}: recompile it"
        assert requirement.specifier.contains(versions[name], prereleases=True), (
            f"{lock.name} pins {name}=={versions[name]}, outside {requirement.specifier}")


def test_serve_and_test_locks_agree_on_every_shared_package() -> None:
    serve = {(n, m): v for n, v, m, _ in pins(LOCKS["serve"][1])}
    test = {(n, m): v for n, v, m, _ in pins(LOCKS["test"][1])}
    assert serve.keys() <= test.keys()
    assert {k: v for k, v in serve.items() if test[k] != v} == {}


def test_no_lock_names_an_index() -> None:
    for _, lock in LOCKS.values():
        assert not re.search(r"--(extra-)?index-url|--find-links|://", lock.read_text())


def test_the_image_installs_the_runtime_lock_with_hashes() -> None:
    deps = [i for i in dockerfile.instructions() if i.stage == 0]
    assert any(i.keyword == "COPY" and "requirements/serve.txt" in i.arguments for i in deps)
    run = " ".join(i.arguments for i in deps if i.keyword == "RUN")
    assert "--require-hashes -r serve.txt" in run


def test_setup_installs_the_required_uv_and_the_locks() -> None:
    script = (ROOT / "scripts" / "setup.sh").read_text()
    assert "required-version" in script  # the uv version is read, not written twice
    assert re.search(r"serve\).*install .*--require-hashes -r requirements/serve.txt", script)
    assert re.search(r"test\).*sync .*--require-hashes requirements/test.txt", script)
