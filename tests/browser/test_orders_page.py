"""The playground past the Hessian, in Chromium: the order of the derivative is chosen, the
Taylor polynomial of that order is drawn over f, and the gradient check shows its table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.browser.test_playground import curve, open_playground, submit

if TYPE_CHECKING:
    from tests.browser.conftest import Watched

pytestmark = pytest.mark.browser


def test_fourth_derivative_and_taylor_polynomial_are_drawn(desktop: Watched) -> None:
    page = open_playground(desktop)
    runs = int(page.locator("body").get_attribute("data-runs") or "0")
    page.locator("#taylor").check()
    expect(page.locator("body")).to_have_attribute("data-runs", str(runs + 1))
    runs += 1
    page.locator("#order").select_option("4")
    expect(page.locator("body")).to_have_attribute("data-runs", str(runs + 1))
    submit(page, "sin(x)")
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    expect(page.locator("#plot svg.chart path.curve")).to_have_count(5)
    fourth = curve(page, "dkf")  # f'''' = sin
    assert len(fourth) > 200
    assert max(abs(y - math.sin(x)) for x, y in fourth) < 5e-3
    # T4 about x = 1 hugs sin near the point, and leaves it far away.
    a = 1.0
    exact = [math.sin(a) + math.cos(a) * (x - a) - math.sin(a) * (x - a) ** 2 / 2
             - math.cos(a) * (x - a) ** 3 / 6 + math.sin(a) * (x - a) ** 4 / 24
             for x in (0.5, 1.5)]
    taylor = curve(page, "taylor")
    near = [(x, y) for x, y in taylor if abs(x - a) < 0.3]
    assert near and max(abs(y - math.sin(x)) for x, y in near) < 2e-3
    assert abs(exact[0] - math.sin(0.5)) < 2e-3  # the closed form checks the test itself
    expect(page.locator('.out[data-kind="order-4"]')).to_contain_text(f"{math.sin(1):.6g}")
    expect(page.locator('.out[data-kind="taylor"]')).to_be_visible()
    expect(page.locator("#plot-caption")).to_contain_text("Taylor polynomial of order 4")
    desktop.screenshot("playground-orders-taylor")
    desktop.assert_clean()


def test_check_my_answer_shows_the_agreement_table(desktop: Watched) -> None:
    page = open_playground(desktop)
    submit(page, "x^2*y + sin(y)")
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    page.locator("#claimed").fill("2*x*y; x^2 + cos(y)")
    page.locator("#check").click()
    expect(page.locator("body")).to_have_attribute("data-check", "done")
    expect(page.locator(".verdict")).to_have_attribute("data-agrees", "true")
    expect(page.locator(".check-table tbody tr")).to_have_count(2)
    page.locator("#claimed").fill("2*x*y; x^2 - cos(y)")  # wrong in y
    page.locator("#check").click()
    expect(page.locator(".verdict")).to_have_attribute("data-agrees", "false")
    expect(page.locator(".check-table tbody tr.disagree")).to_have_count(1)
    expect(page.locator(".check-table tbody tr.disagree")).to_contain_text("y")
    expect(page.locator(".rate-table tbody tr.disagree").first).to_be_visible()
    desktop.screenshot("playground-gradient-check")
    desktop.assert_clean()
