# ruff: noqa: RUF001 - the spellings people paste, as they paste them
"""How nabla reads what people type: every case, with nabla's reading and SymPy's.

``READINGS`` is the one list: docs/readings.md is generated from it (``python -m
app.language.readings``), and tests/test_reading.py checks each case: nabla reads ``text``
as it reads ``means`` (the same tree), the numbers agree with SymPy at 30 digits, and,
where ``sympy`` is empty, SymPy's ``parse_expr`` with ``convert_xor`` and then
``implicit_multiplication_application`` reads ``text`` the same way; where it is not, SymPy
reads ``theirs`` (or refuses). A case that nabla refuses has ``means`` None and the error's
code in ``refused``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    """One spelling: how nabla reads it, and why SymPy's reading differs (if it does)."""

    text: str
    means: str | None  # nabla's reading, written out; None: refused
    sympy: str = ""  # why SymPy's parse_expr reads it otherwise ("" when it agrees)
    refused: str = ""  # the error's code, when refused
    theirs: str = ""  # SymPy's reading, written out, where it differs ("": SymPy refuses)


_NAMES_STAY = "a name of several letters is one name, as in physics (xy, theta, x1, E_n)"
_STOPS = ("a function applied without parentheses stops before the next function, as "
          "textbooks write 2 sin x cos x; SymPy reads the rest of the product as the argument")
_NO_BARS = "SymPy's parser has no |x|"
_NO_UNICODE = "SymPy's parser does not read this character"
_NO_SUBSCRIPT = "SymPy's symbols cannot be subscripted"
_AMBIGUOUS = "both readings are common, so nabla asks"
_FIRST = "only the first factor of a product can be a number (2x, not x 2)"

#: (section title, its cases), in the order of the docs.
SECTIONS: tuple[tuple[str, tuple[Reading, ...]], ...] = (
    ("Implicit multiplication", (
        Reading("2x", "2*x"),
        Reading("2 x", "2*x"),
        Reading("3x^2 - 4x", "3*x^2 - 4*x"),
        Reading("2(x+1)", "2*(x+1)"),
        Reading("(x+1)(x-1)", "(x+1)*(x-1)"),
        Reading("x(y+1)", "x*(y+1)"),
        Reading("x(y+1)^2", "x*(y+1)^2"),
        Reading("x y", "x*y"),
        Reading("x y z", "x*y*z"),
        Reading("2pi x", "2*pi*x"),
        Reading("2sin(x)", "2*sin(x)"),
        Reading("sin(x)cos(x)", "sin(x)*cos(x)"),
        Reading("x sin x", "x*sin(x)"),
        Reading("2^x y", "2^x*y"),
        Reading("x^2 y", "x^2*y"),
        Reading("e^x(1+x)", "e^x*(1+x)"),
        Reading("-x^2", "-(x^2)"),
        Reading("-2x", "-(2*x)"),
        Reading("2x/3", "(2*x)/3"),
        Reading("x/(2y)", "x/(2*y)"),
        Reading("Piecewise((x y, 2x > y), (0, True))", "Piecewise((x*y, 2*x > y), (0, True))"),
        Reading("2v[0]", "2*v[0]", _NO_SUBSCRIPT),
        Reading("v[0] v[1]", "v[0]*v[1]", _NO_SUBSCRIPT),
    )),
    ("Functions applied without parentheses", (
        Reading("sin x", "sin(x)"),
        Reading("sin 2x", "sin(2*x)"),
        Reading("sin 2 x", "sin(2*x)"),
        Reading("sin x^2", "sin(x^2)"),
        Reading("sin x + 1", "sin(x) + 1"),
        Reading("exp x/2", "exp(x)/2"),
        Reading("sqrt x", "sqrt(x)"),
        Reading("sin cos x", "sin(cos(x))"),
        Reading("sin^2(x)", "sin(x)^2"),
        Reading("sin^2 x", "sin(x)^2"),
        Reading("2 sin x cos x", "2*sin(x)*cos(x)", _STOPS, theirs="2*sin(x*cos(x))"),
        Reading("sin x cos y", "sin(x)*cos(y)", _STOPS, theirs="sin(x*cos(y))"),
        Reading("x/sin x", "x/sin(x)"),
    )),
    ("Names", (
        Reading("xy", "xy", _NAMES_STAY, theirs="x*y"),
        Reading("x1", "x1", _NAMES_STAY, theirs="x"),
        Reading("theta", "theta"),
        Reading("E_n", "E_n"),
        Reading("1/(gamma - 1)", "1/(gamma - 1)",
                "a function's name not followed by its argument is a variable (gamma, the "
                "adiabatic index); SymPy takes the function"),
    )),
    ("Notation people paste", (
        Reading("|x|", "abs(x)", _NO_BARS),
        Reading("||x| - 1|", "abs(abs(x) - 1)", _NO_BARS),
        Reading("|x||y|", "abs(x)*abs(y)", _NO_BARS),
        Reading("2|x - y|", "2*abs(x - y)", _NO_BARS),
        Reading("x²", "x^2", _NO_UNICODE),
        Reading("x²y", "x^2*y", _NO_UNICODE),
        Reading("x⁻¹", "x^(-1)", _NO_UNICODE),
        Reading("sin²x", "sin(x)^2", _NO_UNICODE),
        Reading("√x", "sqrt(x)", _NO_UNICODE),
        Reading("√(x+1)", "sqrt(x+1)", _NO_UNICODE),
        Reading("√2x", "sqrt(2)*x", _NO_UNICODE),
        Reading("∛x", "cbrt(x)", _NO_UNICODE),
        Reading("2πx", "2*pi*x", "π is the number pi", theirs="2*π*x"),
        Reading("θ^2", "theta^2", "answers are plain ASCII: θ is the name theta", theirs="θ**2"),
        Reading("x·y", "x*y", _NO_UNICODE),
        Reading("x×y", "x*y", _NO_UNICODE),
        Reading("x÷y", "x/y", _NO_UNICODE),
        Reading("x − y", "x - y", _NO_UNICODE),
        Reading("２x", "2*x", _NO_UNICODE),
    )),
    ("Refused: ambiguous", (
        Reading("x/2y", None, _AMBIGUOUS, "ambiguous", "x*y/2"),
        Reading("1/2x", None, _AMBIGUOUS, "ambiguous", "x/2"),
        Reading("sin x y", None, _AMBIGUOUS, "ambiguous", "sin(x*y)"),
        Reading("e^2x", None, _AMBIGUOUS, "ambiguous", "e^2*x"),
        Reading("x^2y", None, _AMBIGUOUS, "ambiguous", "x^2*y"),
        Reading("sin^-1(x)", None, _AMBIGUOUS + ": asin(x) or 1/sin(x)", "ambiguous",
                "1/sin(x)"),
        Reading("2 3", None, _FIRST, "syntax_error", "6"),
        Reading("x 2", None, _FIRST, "syntax_error", "2*x"),
        Reading("(x+1)2", None, _FIRST, "syntax_error", "2*(x+1)"),
    )),
)
READINGS: tuple[Reading, ...] = tuple(r for _, cases in SECTIONS for r in cases)
#: The shape of each variable the cases use (the rest are scalars).
VECTORS = {"v": 3}


def markdown() -> str:
    """docs/readings.md."""
    lines = [
        "# How nabla reads what people type",
        "",
        "<!-- generated by `python -m app.language.readings` from app/language/readings.py;",
        "     tests/test_reading.py checks every row -->",
        "",
        "nabla reads implicit multiplication and functions applied without parentheses as",
        "textbooks and Wolfram|Alpha do, and the notation people paste (|x|, x², π, √x).",
        "Each row below is checked by a test: nabla reads the text exactly as the reading",
        "written out (the same tree, the same value, gradient and Hessian, against SymPy at 30",
        "digits), and where the last column is empty, SymPy's `parse_expr` with",
        "`standard_transformations + (convert_xor, implicit_multiplication_application)`",
        "reads it the same way (`convert_xor` first, so that `^` is a power, as in nabla, and",
        "`sin^2(x)` is SymPy's function exponentiation). Where nabla differs from SymPy, the",
        "last column says why.",
        "",
        "The rules:",
        "",
        "- Factors side by side multiply (`2x`, `x y`, `2(x+1)`, `(x+1)(x-1)`). Only the first",
        "  factor can be a number: `x 2` and `2 3` are refused.",
        "- `x(y+1)` is x times y+1 when x is a variable: declared in `variables`, or given a",
        "  value in the point. Otherwise `x(...)` is a call of an unknown function.",
        "- A function applied without parentheses takes the factor that follows: a number",
        "  and what it multiplies (`sin 2x`), with its power (`sin x^2`). It stops before the",
        "  next function (`2 sin x cos x`); anything else after it is ambiguous and refused.",
        "- `sin^2(x)` and `sin^2 x` are sin(x)^2; `sin^-1(x)` is refused (asin(x) or",
        "  1/sin(x)?).",
        "- A name of several letters is one name (`xy`, `theta`, `x1`, `E_n`).",
        "- A function's name that is not applied to anything is a variable, as `gamma` in",
        "  `1/(gamma - 1)`; declare it in `variables` or give it a value in the point. A name",
        "  declared in `variables` is always a variable, even `e`, `E`, `pi` or a function's",
        "  name (then that function cannot be called in the expression).",
        "- An exponent is one factor: `2^x y` is (2^x) y, and `e^x(1+x)` is e^x (1+x). A",
        "  number exponent with a factor right after it (`x^2y`, `e^2x`) is refused; with a",
        "  space, `x^2 y` is x^2 times y.",
        "- A product after `/` is refused unless in parentheses (`x/2y`: x/(2y) or (x/2)y?).",
        "- `|x|` is abs(x): a bar after an operand closes the innermost open bar (`||x| - 1|`),",
        "  elsewhere it opens one (`|x||y|`). Around a vector, `|v|` is refused: its norm,",
        "  or the absolute value of each element?",
        "- Unicode: `π` is pi, a Greek letter is the name of the letter (`θ` is `theta`, `γ`",
        "  is `gamma`), `√x` and `∛x` are sqrt(x) and cbrt(x) (the root of one factor, with",
        "  its power: `√2x` is sqrt(2)*x), superscripts are powers (`x²`, `x⁻¹`), `·` and `×`",
        "  multiply, `÷` divides, `−` is minus, and full-width digits and signs are read after",
        "  NFKC normalisation. Other letters are not folded: a full-width or Cyrillic letter",
        "  that looks like a Latin one is refused. Positions in errors count the characters",
        "  as typed; answers and symbolic forms are plain ASCII in nabla's syntax.",
        "",
    ]
    for title, cases in SECTIONS:
        lines += [f"## {title}", "", "| typed | nabla reads | SymPy reads | why nabla differs |",
                  "|---|---|---|---|"]
        for case in cases:
            means = f"`{case.means}`" if case.means is not None else f"refused (`{case.refused}`)"
            theirs = ("the same" if not case.sympy else f"`{case.theirs}`" if case.theirs
                      else "refuses it")
            cells = (f"`{case.text}`", means, theirs, case.sympy)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from pathlib import Path

    target = Path(__file__).resolve().parents[2] / "docs" / "readings.md"
    target.write_text(markdown(), encoding="utf-8")
    print(f"wrote {target}")
