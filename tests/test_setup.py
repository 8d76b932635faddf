"""The set-up is reproducible: uv.lock was made from this pyproject.toml, and the image and
scripts/setup.sh install from it with the uv version pyproject.toml requires."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

from tests import dockerfile
from tests.ops_support import ROOT

PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK: dict[str, Any] = tomllib.loads((ROOT / "uv.lock").read_text())
UV_VERSION = PYPROJECT["tool"]["uv"]["required-version"].removeprefix("==")


def requirement(text: str, extra: str | None) -> tuple[str, str | None, tuple[str, ...], str]:
    """(name, extra it belongs to, its own extras, version specifier) of a PEP 508 string."""
    match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[([^\]]*)\])?\s*([^;]*)", text)
    assert match, f"not a plain requirement: {text!r}"
    name, extras, specifier = match.groups()
    return (re.sub(r"[-_.]+", "-", name).lower(), extra,
            tuple(sorted(e.strip() for e in (extras or "").split(",") if e.strip())),
            specifier.replace(" ", ""))


def test_the_lock_was_made_from_this_pyproject() -> None:
    project = PYPROJECT["project"]
    declared = {requirement(r, None) for r in project["dependencies"]}
    declared |= {requirement(r, extra) for extra, rs in project["optional-dependencies"].items()
                 for r in rs}
    (nabla,) = [p for p in LOCK["package"] if p["name"] == "nabla"]
    locked = {(d["name"], d["marker"].removeprefix("extra == '").removesuffix("'")
               if "marker" in d else None, tuple(sorted(d.get("extras", []))), d["specifier"])
              for d in nabla["metadata"]["requires-dist"]}
    assert locked == declared, "pyproject.toml changed after uv.lock: run `uv lock`"
    assert set(nabla["metadata"]["provides-extras"]) == set(project["optional-dependencies"])


def test_the_image_installs_from_the_lock_with_the_required_uv() -> None:
    deps = [i for i in dockerfile.instructions() if i.stage == 0]
    args = dict(i.arguments.partition("=")[::2] for i in deps if i.keyword == "ARG")
    assert args["UV_VERSION"] == UV_VERSION
    copied = [w for i in deps if i.keyword == "COPY" for w in shlex.split(i.arguments)]
    assert "uv.lock" in copied
    run = " ".join(i.arguments for i in deps if i.keyword == "RUN")
    assert "uv export --frozen --no-dev" in run
    assert "--require-hashes -r requirements.txt" in run


def test_setup_installs_the_required_uv_from_the_lock() -> None:
    script = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'required-version' in script  # the version is read, not written twice
    syncs = [line for line in script.splitlines() if "uv sync" in line]
    assert len(syncs) == 2
    assert all("--locked" in line for line in syncs)
    serve, test = syncs
    assert "--extra" not in serve
    assert "--extra test" in test and "--extra lint" in test
