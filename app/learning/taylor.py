"""A Taylor polynomial written out: as text of the expression language (post it back as an
``expression``), in LaTeX, and as coefficients by multi-index.

The polynomial about a is Σ_alpha c_alpha (x - a)^alpha with c_alpha = ∂^alpha f(a) / alpha!,
the coefficients computed by ``app.service.orders``. Each coefficient is written with all
17 significant digits, so the text evaluates to the same polynomial; exact zeros are left
out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: A multi-index as (coordinate index, power) pairs, and its coefficient.
Coefficients = Sequence[tuple[tuple[tuple[int, int], ...], Any]]


def polynomial(coefficients: Coefficients, names: Sequence[str],
               center: np.ndarray) -> dict[str, Any]:
    """``polynomial`` (text), ``latex`` and ``coefficients`` (by coordinate name)."""
    texts, latex, listed = [], [], []
    for alpha, value in coefficients:
        c = float(value)
        listed.append({"powers": {names[i]: p for i, p in alpha},
                       "value": c if np.isfinite(c) else None})
        if c == 0.0:
            continue
        factors = [_power(_displacement(names[i], center[i]), p) for i, p in alpha]
        latex_factors = [_latex_power(_latex_displacement(names[i], center[i]), p)
                         for i, p in alpha]
        texts.append(_term(_number(c), factors))
        latex.append(_latex_term(c, latex_factors))
    return {"polynomial": _joined(texts) or "0", "latex": _joined(latex) or "0",
            "coefficients": listed}


def evaluate_polynomial(coefficients: Coefficients, displacement: np.ndarray) -> float:
    """The polynomial at a + ``displacement``."""
    total = 0.0
    for alpha, value in coefficients:
        total += float(value) * float(np.prod([displacement[i] ** p for i, p in alpha]))
    return total


def _number(c: float) -> str:
    if not np.isfinite(c):
        return "(0/0)" if np.isnan(c) else "(1/0)" if c > 0 else "(-1/0)"
    return repr(float(c))


def _displacement(name: str, a: float) -> str:
    if a == 0.0:
        return name
    return f"({name} - {_number(a)})" if a > 0 else f"({name} + {_number(-a)})"


def _power(base: str, p: int) -> str:
    return base if p == 1 else f"{base}^{p}"


def _term(coefficient: str, factors: list[str]) -> str:
    if not factors:
        return coefficient
    if coefficient == "1.0":
        return "*".join(factors)
    return "*".join([coefficient, *factors])


def _joined(terms: list[str]) -> str:
    text = ""
    for term in terms:
        if not text:
            text = term
        elif term.startswith("-"):
            text += f" - {term[1:]}"
        else:
            text += f" + {term}"
    return text


def _latex_name(name: str) -> str:
    base, _, index = name.partition("[")
    return f"{base}_{{{index[:-1]}}}" if index else base


def _latex_number(c: float) -> str:
    text = f"{c:.10g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
    return text


def _latex_displacement(name: str, a: float) -> str:
    symbol = _latex_name(name)
    if a == 0.0:
        return symbol
    sign = "-" if a > 0 else "+"
    return rf"\left({symbol} {sign} {_latex_number(abs(a))}\right)"


def _latex_power(base: str, p: int) -> str:
    return base if p == 1 else f"{base}^{{{p}}}"


def _latex_term(c: float, factors: list[str]) -> str:
    if not factors:
        return _latex_number(c)
    if c == 1.0:
        return " ".join(factors)
    if c == -1.0:
        return "-" + " ".join(factors)
    return " ".join([_latex_number(c), *factors])
