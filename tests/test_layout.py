"""The folders are the architecture: each stage imports only the stages below it.

Read from the source (``ast``), not by importing it: every ``import`` statement counts,
module-level, inside functions and under ``TYPE_CHECKING`` alike, since each is a
dependency a reader must follow. The rules:

- (a) imports run downward only, main -> api -> service -> learning -> engine -> language;
  ``app/ops``, ``app/config.py``, ``app/errors.py`` and ``app/__init__.py`` may be imported
  from any stage, and import no stage themselves;
- (b) no import cycle between modules;
- (c) ``app/client`` imports nothing of ``app`` but ``app.client`` and ``app`` itself
  (``__version__``);
- (d) ``app/api`` never imports ``jax``;
- (e) ``schemas`` imports nothing from ``app``;
- and every third-party import of ``app`` and ``schemas`` is a declared dependency.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("main", "api", "service", "learning", "engine", "language")  # top to bottom
SHARED = ("ops", "config", "errors", "")  # "" is app/__init__.py


def module_name(path: Path) -> str:
    """``app/api/routes/plot.py`` -> ``app.api.routes.plot``; a package is its ``__init__``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    """Every module of ``package`` (a top-level folder of the repository), by name."""
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imports(source: str, name: str, is_package: bool) -> Iterator[tuple[str, ...]]:
    """Each name that ``source`` (the module ``name``) imports, as the modules it may be,
    most specific first: ``import a.b`` is ``("a.b",)``; ``from a import b`` is
    ``("a.b", "a")``, since ``b`` is a module of ``a`` or a name defined in ``a``. Relative
    imports are made absolute."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((alias.name,) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, node.module] if node.module else base)
            yield from ((f"{origin}.{alias.name}", origin) for alias in node.names)


def imported_names(package: str) -> dict[str, set[str]]:
    """Module of ``package`` -> the most specific name of each of its imports."""
    return {name: {alternatives[0] for alternatives in
                   imports(path.read_text(), name, path.name == "__init__.py")}
            for name, path in modules(package).items()}


def dependencies(package: str) -> dict[str, set[str]]:
    """Module of ``package`` -> the modules of that package it imports."""
    known = modules(package)
    return {name: {next(m for m in alternatives if m in known)
                   for alternatives in imports(path.read_text(), name,
                                               path.name == "__init__.py")
                   if any(m in known for m in alternatives)}
            for name, path in known.items()}


def part(module: str) -> str:
    """The stage or shared part of ``app`` that a module of it belongs to."""
    return module.split(".")[1] if module.count(".") else ""


APP = dependencies("app")


def test_the_scanner_sees_every_kind_of_import() -> None:
    source = ("import app.ops.logs\nfrom app.engine import xla\nfrom . import walk\n"
              "from ..errors import ShapeError\n"
              "def f() -> None:\n    from app.language.build import Builder\n")
    found = set(imports(source, "app.language.calls", is_package=False))
    assert found == {("app.ops.logs",), ("app.engine.xla", "app.engine"),
                     ("app.language.walk", "app.language"),
                     ("app.errors.ShapeError", "app.errors"),
                     ("app.language.build.Builder", "app.language.build")}
    assert set(modules("app")) >= {"app", "app.main", "app.api.routes.plot", "app.engine.xla"}


def test_every_module_of_app_is_in_a_stage_or_shared() -> None:
    stray = [m for m in APP if part(m) not in (*STAGES, *SHARED, "client")]
    assert stray == [], f"modules outside every stage: {stray}"


def upward(module: str, target: str) -> bool:
    """Whether ``module`` (not of the client) importing ``target`` breaks rule (a)."""
    source, destination = part(module), part(target)
    if destination in SHARED:
        return False  # usable from any stage
    if destination not in STAGES or source in SHARED:
        return True  # no stage imports the client, and the shared parts import no stage
    return STAGES.index(destination) < STAGES.index(source)


def test_imports_run_downward_only() -> None:
    wrong = sorted(f"{m} imports {t}" for m, ts in APP.items() if part(m) != "client"
                   for t in ts if upward(m, t))
    assert wrong == [], "imports against main -> api -> service -> learning -> engine -> " \
        "language (ops, config, errors import no stage):\n" + "\n".join(wrong)


@pytest.mark.parametrize(("module", "target", "wrong"), [
    ("app.api.memo", "app.service.pipeline", False),
    ("app.engine.xla", "app.errors", False),
    ("app.language.build", "app.engine.evaluator", True),
    ("app.ops.serve", "app.api.observability", True),
    ("app.config", "app.language.syntax", True),
    ("app.service.pipeline", "app.client.client", True),
    ("app.main", "app.api.routes", False),
])
def test_the_downward_rule_itself(module: str, target: str, wrong: bool) -> None:
    assert upward(module, target) is wrong


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles found by a depth-first search: none exactly when the graph has none."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target in path:
                found.append([*path[path.index(target):], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    return found


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    found = cycles(APP)
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_client_imports_nothing_of_the_server() -> None:
    wrong = sorted(f"{m} imports {t}" for m, ts in APP.items() if part(m) == "client"
                   for t in ts if t != "app" and part(t) != "client")
    assert wrong == []


def test_api_never_imports_jax() -> None:
    wrong = sorted(f"{m} imports {n}" for m, names in imported_names("app").items()
                   if part(m) == "api" for n in names if n.split(".")[0] in ("jax", "jaxlib"))
    assert wrong == []


def test_schemas_import_nothing_from_app() -> None:
    wrong = sorted(f"{m} imports {n}" for m, names in imported_names("schemas").items()
                   for n in names if n.split(".")[0] == "app")
    assert wrong == []


def declared_dependencies() -> set[str]:
    """The distributions pyproject.toml declares for running nabla, names normalized."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalized(re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0])
            for r in project["dependencies"]}


def normalized(distribution: str) -> str:
    """A distribution's name as the package index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_third_party_import_is_a_declared_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    used = {n.split(".")[0] for package in ("app", "schemas")
            for names in imported_names(package).values() for n in names}
    third_party = used - set(sys.stdlib_module_names) - {"app", "schemas"}
    undeclared = sorted(f"{name} ({', '.join(distributions.get(name, ['not installed']))})"
                        for name in third_party
                        if not {normalized(d) for d in distributions.get(name, [])}
                        & declared_dependencies())
    assert undeclared == [], "imported by app/ or schemas/ but not in [project] " \
        f"dependencies: {undeclared}"
