"""GET /v1/plot reads its text off the event loop, however long the text and whether or not
it parses (issue 15, item 6: a 32,000-character plot, or one syntax error, blocked the loop).
"""

from __future__ import annotations

import pytest

from app.config import Settings
from app.language import syntax
from tests.test_engine import CountingParser, plot


@pytest.fixture
def parser(monkeypatch: pytest.MonkeyPatch) -> CountingParser:
    counting = CountingParser(syntax._PARSER)
    monkeypatch.setattr(syntax, "_PARSER", counting)
    return counting


def long_expression(chars: int) -> str:
    """``chars`` characters of terms with long coefficients (which SymPy collects into one,
    so the compile is cheap: the text's length is what is tested)."""
    terms, k = [], 1
    while sum(len(t) + 1 for t in terms) < chars - 80:
        terms.append(f"{k}.{'0123456789' * 6}*x")
        k += 1
    text = "+".join(terms)
    return text + " " * (chars - len(text))


@pytest.mark.parametrize("interpret", [True, False], ids=["jets-first", "xla-only"])
def test_a_32000_character_plot_is_read_off_the_event_loop(parser: CountingParser,
                                                            interpret: bool) -> None:
    text = long_expression(32_000)
    assert len(text) == 32_000
    response = plot(Settings(in_process=True, interpret=interpret), expression=text,
                    start=0, stop=1, num=3)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert parser.calls == [(text, False)]


@pytest.mark.parametrize("text", ["sin(x", "x + * 2", "x $ 2", "(" * 5000 + "x"])
def test_a_plot_that_does_not_parse_is_refused_off_the_event_loop(parser: CountingParser,
                                                                   text: str) -> None:
    response = plot(Settings(in_process=True), expression=text, start=0, stop=1)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert parser.calls and all(not on_loop for _, on_loop in parser.calls)
