
"""The playground reads what people type (2x, sin x, |x|, x², θ) and, when a name is
unknown, shows the suggestion under the field, one click from being used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import expect

from tests.browser.test_playground import open_playground, submit

if TYPE_CHECKING:
    from tests.browser.conftest import Watched


def test_textbook_spellings_get_their_variables_and_an_answer(desktop: Watched) -> None:
    page = open_playground(desktop)
    for expression, names in [("2x sin x", ["x"]), ("|x| + θ²", ["theta", "x"]),
                              ("x y + √y", ["x", "y"])]:
        submit(page, expression)
        expect(page.locator("body")).to_have_attribute("data-state", "done")
        expect(page.locator("#error")).to_be_hidden()
        rows = page.locator("#variables .var input.var-at")
        expect(rows).to_have_count(len(names))
        labels = [rows.nth(i).get_attribute("aria-label") or "" for i in range(len(names))]
        assert [label.split()[0] for label in labels] == names
    # f is typeset as nabla read it (its symbolic value, which SymPy may have shortened:
    # 2 sin x cos x is sin(2x)), not shown as raw text
    submit(page, "2 sin x cos x")
    expect(page.locator("#formula")).to_contain_text("sin")
    expect(page.locator("#formula mtext")).to_have_count(0)
    desktop.assert_clean()


def test_an_unknown_name_shows_did_you_mean_and_a_click_fixes_it(desktop: Watched) -> None:
    desktop.expected_console = ("the server responded with a status of 422",)
    page = open_playground(desktop)
    submit(page, "sinn(x) + 1")
    expect(page.locator("body")).to_have_attribute("data-state", "error")
    hint = page.locator("#error .error-suggest")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Did you mean")
    button = hint.locator("button.suggestion", has_text="sin").first
    expect(button).to_have_text("sin")
    desktop.screenshot("playground-desktop-suggestion")
    runs = int(page.locator("body").get_attribute("data-runs") or "0")
    button.click()
    expect(page.locator("body")).to_have_attribute("data-runs", str(runs + 1))
    expect(page.locator('input[name="expression"]')).to_have_value("sin(x) + 1")
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    expect(page.locator("#error")).to_be_hidden()
    desktop.assert_clean()


def test_an_ambiguous_spelling_shows_both_ways_to_write_it(desktop: Watched) -> None:
    desktop.expected_console = ("the server responded with a status of 422",)
    page = open_playground(desktop)
    submit(page, "x/2y")
    hint = page.locator("#error .error-suggest")
    expect(hint).to_be_visible()
    expect(hint.locator("code")).to_have_text(["x/(2y)", "x/2*y"])
    expect(page.locator("#error mark.error-at")).to_have_attribute("data-position", "1")
    desktop.assert_clean()
