"""``read_from_point``: which names of the point may change how a text reads (one pass over
the text, whatever the number of names), checked against the search it replaced: one
regular expression a name."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.compilation import CompileSpec
from app.engine.xla import KINDS
from app.language.tokens import read_from_point


def oracle(texts: tuple[str, ...], name: str) -> bool:
    """The former test, name by name: a function's name, a name right before ``(`` with no
    word character before it, or any text that is not ASCII."""
    if name in {"sin", "exp", "log"}:
        return True
    called = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}\(")
    return any(not text.isascii() or called.search(text) for text in texts)


NAMES = ["x", "x0", "x1", "y", "xy", "_a", "0x", "sin", "exp", "a.b", "x-", "(", "é"]
TEXTS = st.text(alphabet="xy01_ab.(-)+* é", max_size=30)


@settings(max_examples=2000, derandomize=True, database=None, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=3), st.lists(st.sampled_from(NAMES), max_size=6))
def test_the_names_read_are_those_the_search_name_by_name_found(texts: list[str],
                                                                 names: list[str]) -> None:
    expected = {name for name in names if oracle(tuple(texts), name)}
    assert read_from_point(texts, names) == expected


def test_a_called_name_is_read_and_a_name_inside_a_longer_one_is_not() -> None:
    text = "x0(y) + 2x1(y) + ax2(y) + x3 (y) + sin(x4) + x5"
    names = ["x0", "x1", "x2", "x3", "x4", "x5", "sin"]
    assert read_from_point([text], names) == {"x0", "sin"}
    assert read_from_point([text, "x5(1)"], names) == {"x0", "x5", "sin"}
    assert read_from_point([text + " + π"], names) == set(names)  # not ASCII: all of them


def spec(expression: str, point: dict[str, tuple[int, ...]]) -> CompileSpec:
    return CompileSpec((expression,), False, None, tuple(sorted(point.items())), KINDS, None, 1)


def test_programs_share_a_parse_unless_a_scalar_of_the_point_is_called() -> None:
    bomb = " * ".join(f"sin(x{i % 25} * {i + 1} + x{(i * 7) % 25})" for i in range(500))
    scalars = {f"x{i}": () for i in range(25)}
    assert spec(bomb, scalars).program_key == spec(bomb, {**scalars, "q": ()}).program_key
    assert spec(bomb, scalars).program_key != spec(bomb, {**scalars, "q": (2,)}).program_key
    called = bomb + " * x3(2)"  # x3 times 2 when x3 is in the point, a call otherwise
    assert spec(called, scalars).program_key != spec(called, {"x0": ()}).program_key
