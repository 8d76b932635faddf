# ruff: noqa: RUF001, RUF002 - this module is about the characters that look like others
"""Notation people paste -> the language's own characters, each traced to its source.

Textbooks, papers and Wolfram|Alpha write ``x²``, ``x⁻¹``, ``π``, ``θ``, ``2·x``, ``a×b``,
``a÷b``, ``−x`` (U+2212) and full-width ``２（x＋1）``; ``transcribe`` rewrites them as
``x^(2)``, ``x^(-1)``, ``pi``, ``theta``, ``2*x``, ``a*b``, ``a/b``, ``-x`` and ``2(x+1)``
(NFKC, one character at a time), and keeps ``√`` and ``∛``, which the grammar reads
itself. Letters other than Greek ones are not folded: a full-width ``ｘ`` or a Cyrillic
``ѕ`` that looks like an ASCII letter is refused, not read as one. Every
character it writes carries the offset of the character the user typed, so positions in
errors point into the text as sent. A character it cannot rewrite stays as it is, and the
lexer refuses it by its Unicode name. Text that is plain ASCII is returned unchanged.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

GREEK: dict[str, str] = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon",
    "ζ": "zeta", "η": "eta", "θ": "theta", "ϑ": "theta", "ι": "iota", "κ": "kappa",
    "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho",
    "σ": "sigma", "ς": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "ϕ": "phi",
    "χ": "chi", "ψ": "psi", "ω": "omega",
    "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi",
    "Σ": "Sigma", "Υ": "Upsilon", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}
OPERATORS: dict[str, str] = {
    "·": "*", "⋅": "*", "∙": "*", "×": "*", "÷": "/", "∕": "/", "−": "-", "⁄": "/",
    "ᵀ": ".T ",  # Xᵀ is X.T (spaced after: xᵀy is x.T y)
}
SUPERSCRIPTS: dict[str, str] = {
    "⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7",
    "⁸": "8", "⁹": "9", "⁺": "+", "⁻": "-", "ⁿ": "n", "ⁱ": "i", "⁽": "(", "⁾": ")",
}
KEPT = frozenset("√∛")


@dataclass(frozen=True)
class Transcript:
    """The text in the language's characters, and for each of its characters (and its end)
    the offset in the text as typed."""

    text: str
    source: tuple[int, ...]

    def origin(self, pos: int) -> int:
        """The offset in the typed text of the character at ``pos`` (or of the end)."""
        return self.source[min(pos, len(self.source) - 1)]

    def end(self, pos: int) -> int:
        """The typed offset just after the character before ``pos`` (a token's end)."""
        return self.source[pos - 1] + 1 if pos > 0 else 0


def transcribe(typed: str) -> Transcript:
    """``typed`` in the language's own characters, with the source of each."""
    if typed.isascii():
        return Transcript(typed, tuple(range(len(typed) + 1)))
    out: list[str] = []
    source: list[int] = []

    def emit(text: str, at: int) -> None:
        out.append(text)
        source.extend([at] * len(text))

    i = 0
    while i < len(typed):
        char = typed[i]
        if char in SUPERSCRIPTS:
            j = i
            while j < len(typed) and typed[j] in SUPERSCRIPTS:
                j += 1
            emit("^(", i)
            for k in range(i, j):
                emit(SUPERSCRIPTS[typed[k]], k)
            emit(")", j - 1)
            i = j
            continue
        emit(_one(typed, i, out[-1][-1:] if out else ""), i)
        i += 1
    source.append(len(typed))
    return Transcript("".join(out), tuple(source))


def _one(typed: str, i: int, before: str) -> str:
    """The character at ``i`` in the language's characters; ``before`` is the last one
    written."""
    char = typed[i]
    if char.isascii() or char in KEPT:
        return char
    if char in OPERATORS:
        return _operator(OPERATORS[char])
    folded = unicodedata.normalize("NFKC", char)
    if folded in GREEK:
        return _greek(GREEK[folded], typed, i, before)
    if folded in OPERATORS:
        return _operator(OPERATORS[folded])
    if folded.isascii() and folded.isprintable() and not folded.isalpha():
        return folded  # full-width digits and signs; a letter that looks like x stays out
    if "⁄" in folded and folded.replace("⁄", "").isascii():  # ½ is (1/2)
        return "(" + folded.replace("⁄", "/") + ")"
    return char


def _operator(op: str) -> str:
    """An operator, spaced so that two of them stay two: ``××`` is not ``**``."""
    return f" {op} " if op in "*/" else op


def _greek(name: str, typed: str, i: int, before: str) -> str:
    """A Greek letter is a name of its own: ``2πx`` is 2 pi x, ``θ1`` the name theta1."""
    after = typed[i + 1] if i + 1 < len(typed) else ""
    lead = " " if before.isalnum() or before == "_" else ""
    trail = " " if after.isalpha() else ""
    return lead + name + trail
