"""The playground at GET /, driven in Chromium: type, press Enter, look at what is drawn."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, Route, expect

if TYPE_CHECKING:
    from tests.browser.conftest import Watched

pytestmark = pytest.mark.browser


def submit(page: Page, expression: str) -> None:
    """Type an expression into the field and press Enter; wait until the page has answered."""
    runs = int(page.locator("body").get_attribute("data-runs") or "0")
    field = page.locator('input[name="expression"]')
    field.fill("")
    field.type(expression)
    field.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-runs", str(runs + 1))


def open_playground(watched: Watched) -> Page:
    """The playground, after its first (default) computation has finished."""
    page = watched.page
    page.goto(watched.origin + "/")
    expect(page.locator("body")).to_have_attribute("data-runs", "1")
    return page


def curve(page: Page, series: str) -> list[tuple[float, float]]:
    """The (x, y) data points of a drawn curve, read back from its SVG path and axes."""
    chart = page.locator('svg.chart[data-kind="1d"]')
    box = {k: float(chart.get_attribute(f"data-{k}") or "nan")
           for k in ("x-min", "x-max", "y-min", "y-max", "left", "right", "top", "bottom")}
    d = page.locator(f'path.curve[data-series="{series}"]').get_attribute("d") or ""
    pixels = [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]
    x_scale = (box["x-max"] - box["x-min"]) / (box["right"] - box["left"])
    y_scale = (box["y-max"] - box["y-min"]) / (box["bottom"] - box["top"])
    return [(box["x-min"] + (px - box["left"]) * x_scale,
             box["y-min"] + (box["bottom"] - py) * y_scale) for px, py in pixels]


def test_sin_plots_its_derivative_cos(desktop: Watched) -> None:
    page = open_playground(desktop)
    submit(page, "sin(x)")
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    expect(page.locator("#plot svg.chart path.curve")).to_have_count(3)
    for series, exact in (("f", math.sin), ("df", math.cos), ("d2f", lambda x: -math.sin(x))):
        points = curve(page, series)
        assert len(points) > 200, series
        worst = max(abs(y - exact(x)) for x, y in points)
        assert worst < 5e-3, (series, worst)
    # The numbers at the point x = 1: f'(1) = cos(1), shown in the gradient.
    expect(page.locator('.out[data-kind="gradient"]')).to_contain_text(f"{math.cos(1):.6g}")
    expect(page.locator(".formula math")).to_contain_text("sin")
    # The symbolic derivative, from the server: d/dx sin(x) = cos(x), written without numbers.
    symbolic = page.locator('#symbolic [data-kind="symbolic-gradient"]')
    expect(symbolic).to_contain_text("cos")
    chart = page.locator("svg.chart")
    middle = (float(chart.get_attribute("data-left") or "0")
              + float(chart.get_attribute("data-right") or "0")) / 2
    chart.hover(position={"x": middle, "y": 40})  # the middle of the range: x = 0
    expect(page.locator("#readout")).to_contain_text("f\u2032 = 1,")  # f prime
    desktop.screenshot("playground-desktop-sin")
    desktop.assert_clean()


def test_two_variables_draw_a_heat_map_with_gradient_arrows(desktop: Watched) -> None:
    page = open_playground(desktop)
    submit(page, "x^2*y + sin(y)")
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    chart = page.locator('#plot svg.chart[data-kind="2d"]')
    expect(chart).to_be_visible()
    assert chart.locator(".heat rect").count() == 41 * 41
    assert chart.locator("path.arrow").count() > 20
    assert chart.locator("path.contour").count() > 2
    expect(page.locator('input[name="at:y"]')).to_be_visible()
    # At (x, y) = (1, 1) the gradient is (2xy, x^2 + cos y) = (2, 1 + cos 1).
    expect(page.locator('.out[data-kind="gradient"]')).to_contain_text(f"{1 + math.cos(1):.6g}")
    desktop.screenshot("playground-desktop-2d")
    desktop.assert_clean()


@pytest.mark.parametrize(("expression", "position"), [
    pytest.param("2*x + * 3", 6, id="operator-without-operand"),
    pytest.param("sin(x", 5, id="unclosed-call"),
])
def test_broken_expression_shows_its_error_at_its_position(
    desktop: Watched, expression: str, position: int
) -> None:
    desktop.expected_console = ("the server responded with a status of 422",)
    page = open_playground(desktop)
    submit(page, expression)
    expect(page.locator("body")).to_have_attribute("data-state", "error")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"position {position}")
    mark = error.locator("mark.error-at")
    expect(mark).to_have_attribute("data-position", str(position))
    expected = expression[position] if position < len(expression) else " "
    expect(mark).to_have_text(expected)
    expect(page.locator('input[name="expression"]')).to_have_attribute("aria-invalid", "true")
    desktop.screenshot(f"playground-desktop-error-{position}")
    desktop.assert_clean()


def test_examples_are_one_click_away(desktop: Watched) -> None:
    page = open_playground(desktop)
    page.get_by_role("button", name="2xᵀx").click()
    expect(page.locator("body")).to_have_attribute("data-runs", "2")
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    expect(page.locator('input[name="expression"]')).to_have_value("2*dot(x, x)")
    # d2l: the gradient of 2 x^T x at x = [0, 1, 2, 3] is 4x.
    gradient = page.locator('.out[data-kind="gradient"]')
    for entry in ("4", "8", "12"):
        expect(gradient).to_contain_text(entry)
    expect(page.locator("#plot-card")).to_be_hidden()
    desktop.screenshot("playground-desktop-vector")
    desktop.assert_clean()


def test_phone_layout_fits_the_screen(phone: Watched) -> None:
    page = open_playground(phone)
    expect(page.locator('#plot svg.chart[data-kind="1d"]')).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    phone.screenshot("playground-phone-sin")
    submit(page, "x^2*y + sin(y)")
    expect(page.locator('#plot svg.chart[data-kind="2d"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    phone.screenshot("playground-phone-2d")
    phone.assert_clean()


def test_symbolic_results_are_typeset_when_the_response_has_them(desktop: Watched) -> None:
    symbolic = {"value": "sin(x)", "gradient": ["cos(x)"], "hessian": [["-sin(x)"]]}

    def add_symbolic(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["symbolic"] = symbolic
        route.fulfill(response=response, body=json.dumps(body))

    desktop.page.route("**/v1/differentiate", add_symbolic)
    page = open_playground(desktop)
    box = page.locator("#symbolic")
    expect(box).to_be_visible()
    expect(box.locator('[data-kind="symbolic-gradient"]')).to_contain_text("cos")
    expect(box.locator('[data-kind="symbolic-hessian"]')).to_contain_text("\u2212sin")  # minus sign
    desktop.assert_clean()


MATHML_CASES = {
    "x^2/y": ["<mfrac>", "<msup><mi>x</mi><mn>2</mn></msup>"],
    "sqrt(x) + abs(y)": ["<msqrt><mi>x</mi></msqrt>", "<mo>|</mo>"],
    "-x**2": ["<mo>\u2212</mo><msup>"],
    "(a + b)*c": ["<mo>(</mo>", "<mo>)</mo>"],
    "x[0] * alpha": ["<msub><mi>x</mi><mn>0</mn></msub>", "<mi>\u03b1</mi>"],
    "where(x > 0, x, -x)": ["<mtable", "otherwise", "&gt;"],
    "2*dot(x, x)": ["<mi mathvariant=\"normal\">\u22a4</mi>"],
    "exp(-x) * 1e-3": ["<msup><mi mathvariant=\"normal\">e</mi>", "<mn>10</mn>"],
    "log(x, 2)": ["<msub><mi>log</mi><mn>2</mn></msub>"],
    "sin(x": ["<mtext>sin(x</mtext>"],
}


def test_expressions_become_mathml(desktop: Watched) -> None:
    page = open_playground(desktop)
    rendered = page.evaluate(
        "async (texts) => { const m = await import('/static/playground.js');"
        " return texts.map((t) => m.exprML(t)); }",
        list(MATHML_CASES),
    )
    for (text, fragments), mathml in zip(MATHML_CASES.items(), rendered, strict=True):
        for fragment in fragments:
            assert fragment in mathml, (text, fragment, mathml)
    desktop.assert_clean()


def test_a_matrix_value_with_rows_separated_by_semicolons(desktop: Watched) -> None:
    """Issue 13: a matrix typed as MATLAB writes it; the gradient shown as a matrix."""
    page = open_playground(desktop)
    page.locator('input[name="expression"]').fill("logdet(X)")  # the field of X appears
    page.locator('input[name="at:X"]').fill("2, 1; 1, 3")
    runs = int(page.locator("body").get_attribute("data-runs") or "0")
    page.locator('input[name="expression"]').press("Enter")
    expect(page.locator("body")).to_have_attribute("data-runs", str(runs + 1))
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    gradient = page.locator('.out[data-kind="gradient"] mtable.matrix')
    expect(gradient).to_have_count(1)
    cells = [c.strip() for c in gradient.locator("mtd").all_text_contents()]
    assert [float(c.replace("\u2212", "-")) for c in cells] == [0.6, -0.2, -0.2, 0.4]
    desktop.assert_clean()
