"""Every page nabla serves loads its assets from nabla: no CDN, no outside validator."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc", "/docs/oauth2-redirect"])
def test_pages_reference_no_remote_asset(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert REMOTE.findall(response.text) == []


@pytest.mark.parametrize("path", [
    "/static/playground.js", "/static/playground.css", "/docs/redoc.js",
    "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
    "/docs/assets/favicon.png",
])
def test_assets_are_served_locally(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_redoc_bundle_fetches_no_remote_logo(client: httpx.Client) -> None:
    bundle = client.get("/docs/redoc.js").text
    assert "redoc" in bundle.lower()
    assert "cdn.redoc.ly" not in bundle


def test_swagger_ui_sends_the_spec_to_no_validator(client: httpx.Client) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_playground_page_restricts_itself_to_this_origin(client: httpx.Client) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert client.get("/static/playground.js").headers["content-type"].startswith(
        "text/javascript")
