"""/docs (Swagger UI) and /redoc work from nabla's own assets, with no other host."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

if TYPE_CHECKING:
    from tests.browser.conftest import Watched

pytestmark = pytest.mark.browser


def test_swagger_ui_try_it_out_executes(desktop: Watched) -> None:
    page = desktop.page
    page.goto(desktop.origin + "/docs")
    operation = page.locator("#operations-derivatives-differentiate_v1_differentiate_post")
    expect(operation).to_be_visible()
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.get_by_text("/v1/differentiate", exact=True)).to_be_visible()
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text("gradient")
    desktop.screenshot("docs-swagger")
    desktop.assert_clean()


def test_redoc_renders(desktop: Watched) -> None:
    page = desktop.page
    page.goto(desktop.origin + "/redoc")
    summary = "Values, gradient or Jacobian, and Hessian of an expression"
    heading = page.get_by_role("heading", name=summary)
    expect(heading).to_be_visible()
    expect(page.locator("h1").first).to_contain_text("nabla")
    desktop.screenshot("docs-redoc")
    desktop.assert_clean()
