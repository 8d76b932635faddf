"""Every random draw of the tests can be replayed: Hypothesis is derandomized, and every
generator of random points in tests/ and bench/ is seeded with a constant that does not
depend on the process (``hash()`` of a string is salted per process by PYTHONHASHSEED)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import hypothesis

ROOT = Path(__file__).resolve().parent.parent
SEEDED = {"default_rng", "Random", "RandomState", "seed"}  # constructors that take a seed
NOT_DRAWS = {"Generator", "PCG64", "SeedSequence", "BitGenerator", "SystemRandom"}


def calls(path: Path) -> Iterator[tuple[str, ast.Call]]:
    """Each call of ``random.*`` or ``np.random.*`` / ``numpy.random.*`` in ``path``, by
    the name called."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if owner in ("random", "np.random", "numpy.random"):
                yield node.func.attr, node


def unseeded(path: Path, root: Path = ROOT) -> list[str]:
    """The draws of ``path`` that a rerun would not repeat."""
    found = []
    for name, call in calls(path):
        where = f"{path.relative_to(root)}:{call.lineno} {ast.unparse(call)[:60]}"
        if name in SEEDED:
            seeds = [*call.args, *(k.value for k in call.keywords)]
            salted = any(isinstance(n, ast.Call) and ast.unparse(n.func) == "hash"
                         for seed in seeds for n in ast.walk(seed))
            if not seeds or salted:
                found.append(where)
        elif name not in NOT_DRAWS:  # a draw from the global, unseeded generator
            found.append(where)
    return found


def test_every_random_generator_has_a_fixed_seed() -> None:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])
    assert [f for path in files for f in unseeded(path)] == []


def test_the_check_finds_unseeded_draws(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import random\nimport numpy as np\nrandom.random()\n"
                      "np.random.default_rng()\nnp.random.default_rng(hash('x'))\n"
                      "np.random.uniform(0, 1)\nrandom.Random(3)\nnp.random.default_rng(7)\n")
    assert [f.split()[0] for f in unseeded(sample, tmp_path)] == [
        "sample.py:3", "sample.py:4", "sample.py:5", "sample.py:6"]


def test_hypothesis_replays_the_same_examples() -> None:
    assert hypothesis.settings.default.derandomize is True
    assert hypothesis.settings.default.database is None
