"""Readings that people would split on: refused, with each reading and how to write it.

nabla reads implicit products and applications as textbooks do (docs/readings.md), and
refuses the spellings where two readings are both common, rather than guess:

- ``sin x y``: sin(x y) or sin(x) y. A function applied without parentheses takes the
  factor that follows (``sin 2x``, ``sin x^2``) and stops before the next function
  (``2 sin x cos x``); anything else after it is refused.
- ``x/2y``: x/(2y) or (x/2)y.
- ``x^2y`` and ``e^2x`` (a number exponent, then a factor right after it): x^2 y or
  x^(2y). With a space, ``x^2 y`` is x^2 times y.
- ``sin^-1(x)``: the inverse function, asin(x), or 1/sin(x). Only ``sin^2(x)``, a
  positive whole power, reads as sin(x)^2.

Each check gets the text as typed, so the readings it shows are the user's own words.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from app.errors import ExpressionError
from app.language.tree import Syntax


def ambiguous(where: int, written: str, readings: Sequence[tuple[str, str]]) -> ExpressionError:
    """The error for ``written`` at ``where``: each (reading, how to write it)."""
    said = " or ".join(meaning for meaning, _ in readings)
    fixes = " or ".join(spelling for _, spelling in readings)
    return ExpressionError(
        f"{written!r} at position {where} is ambiguous: it could mean {said}; "
        f"write {fixes}", where, code="ambiguous",
        readings=[spelling for _, spelling in readings])


def _slice(text: str, span: tuple[int, int]) -> str:
    return text[span[0]:span[1]].strip()


def _function_headed(node: Syntax) -> bool:
    """A function call (``cos x``, ``cos(x)``, ``sin^2(x)``): where an argument stops."""
    while node.kind == "power" and node.form != "group":
        node = node.args[0] or node
        if node.kind != "call":
            return False
    return node.kind == "call" and node.form in ("", "applied")


def check_product(items: Sequence[Syntax], text: str) -> None:
    """Refuse ``sin x y`` and ``x^2y`` among the factors of an implicit product."""
    for item, after in itertools.pairwise(items):
        rest = text[after.span[0]:items[-1].span[1]].strip()
        if item.form == "applied" and not _function_headed(after):
            call = item if item.kind == "call" else item.args[0]
            assert call is not None and call.args and call.args[0] is not None
            arg = _slice(text, call.args[0].span)
            head = text[item.span[0]:call.args[0].span[0]].strip()
            raise ambiguous(item.pos, _slice(text, (item.span[0], items[-1].span[1])), [
                (f"{head}({arg} {rest})", f"{head}({arg} {rest})"),
                (f"{head}({arg}) {rest}", f"{head}({arg})*{rest}")])
        if item.kind == "power" and item.form != "group":
            exponent = item.args[-1]
            assert exponent is not None
            number = exponent.args[0] if exponent.kind == "unary" else exponent
            if (number is not None and number.kind == "number" and exponent.form != "group"
                    and exponent.span[1] == after.span[0]):
                base = text[item.span[0]:exponent.span[0]].strip()
                power, factor = _slice(text, exponent.span), _slice(text, after.span)
                raise ambiguous(exponent.pos, _slice(text, (item.span[0], after.span[1])), [
                    (f"{base}{power} times {factor}", f"{base}{power}*{factor}"),
                    (f"{base}({power}{factor})", f"{base}({power}*{factor})")])


def check_divisors(node: Syntax, text: str) -> None:
    """Refuse ``x/2y``: a divisor that is an implicit product not in parentheses."""
    for op, at, operand in zip(node.ops, node.op_positions, node.args[1:], strict=True):
        assert operand is not None
        product = operand.args[0] if operand.kind == "unary" else operand
        if op != "/" or product is None or product.kind != "juxt" or "group" in (
                operand.form, product.form):
            continue
        second = product.args[1]
        assert second is not None
        left = text[node.span[0]:at].strip()
        divisor = _slice(text, operand.span)
        head = text[operand.span[0]:second.span[0]].strip()
        tail = text[second.span[0]:operand.span[1]].strip()
        raise ambiguous(at, _slice(text, (node.span[0], operand.span[1])), [
            (f"{left}/({divisor})", f"{left}/({divisor})"),
            (f"({left}/{head}) {tail}", f"{left}/{head}*{tail}")])


def check_function_power(name: str, exponent: Syntax, text: str, inverse: str | None,
                         at: int) -> None:
    """Refuse ``sin^-1(x)`` and other powers of a function but a positive whole one."""
    if exponent.kind == "number" and exponent.text.isdigit() and int(exponent.text) > 0:
        return
    power = _slice(text, exponent.span)
    readings = [(f"{name}(x)^{power}", f"{name}(x)^{power}")]
    if inverse is not None and exponent.kind == "unary" and exponent.text == "-":
        one = exponent.args[0]
        if one is not None and one.kind == "number" and one.text == "1":
            readings = [(f"the inverse function {inverse}(x)", f"{inverse}(x)"),
                        (f"1/{name}(x)", f"1/{name}(x)")]
    raise ambiguous(at, f"{name}^{power}", readings)
