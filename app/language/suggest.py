""""Did you mean": what an unknown name was probably meant to be.

Three guesses, in this order: a function run into its argument (``sinx`` -> ``sin(x)``),
known names run together (``xy`` -> ``x*y``, ``pix`` -> ``pi*x``; a name of several letters
is one name in nabla), and names spelled alike (``sinn`` -> ``sin``, ``lambd`` -> ``lambda``).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

from app.language.catalog import CONSTANTS, FUNCTION_NAMES

_LIMIT = 3
_VALUES = frozenset(n for n, v in CONSTANTS.items() if n not in ("True", "False"))


def suggestions(name: str, variables: Collection[str], *, called: bool = False) -> list[str]:
    """Spellings ``name`` may have meant, best first (at most three). ``called``: it was
    written as a function, right before ``(``."""
    known = {*variables, *_VALUES}
    found: list[str] = []
    if not called:
        found += [f"{f}({name[len(f):]})" for f in sorted(FUNCTION_NAMES, key=len, reverse=True)
                  if name.startswith(f) and name[len(f):] in known]
        split = _split(name, known)
        if split is not None:
            found.append("*".join(split))
    pool = FUNCTION_NAMES | known if not called else FUNCTION_NAMES
    found += difflib.get_close_matches(name, sorted(pool), n=_LIMIT, cutoff=0.75)
    return list(dict.fromkeys(found))[:_LIMIT]


def _split(name: str, known: Collection[str]) -> list[str] | None:
    """``name`` as two or more known names run together, the fewest parts first."""
    best: list[list[str] | None] = [[]] + [None] * len(name)
    for end in range(1, len(name) + 1):
        for start in range(end):
            prefix = best[start]
            if prefix is not None and name[start:end] in known:
                candidate = [*prefix, name[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    result = best[-1]
    return result if result is not None and len(result) > 1 else None


def did_you_mean(found: list[str]) -> str:
    """``; did you mean a, b or c?``, or nothing."""
    if not found:
        return ""
    shown = found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]
    return f"; did you mean {shown}?"
