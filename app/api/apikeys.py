"""Optional API keys: /v1/ asks for one once the operator has configured their hashes.

The service holds only SHA-256 hashes of the keys (``NABLA_API_KEY_HASHES``, or the file
``NABLA_API_KEY_FILE`` names, one hash a line, such as a mounted Kubernetes Secret), so a
leaked configuration leaks no key. A presented key is hashed and its hash looked up; the
key is never logged, nor stored anywhere. A key's identity for the rate limits is the
first 16 hex digits of its hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers

from app.api.problems import problem
from app.config import Settings

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
HOW_TO_SEND = "send it as 'Authorization: Bearer KEY' (or 'X-API-Key: KEY')"


def key_hash(key: str) -> str:
    """The hex SHA-256 of ``key``, as the configuration holds it."""
    return hashlib.sha256(key.encode()).hexdigest()


def _entries(text: str, separators: str) -> list[str]:
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return [item.strip().lower() for line in lines for item in re.split(separators, line)
            if item.strip()]


def configured_hashes(settings: Settings) -> list[str]:
    """The key hashes of ``settings``: the list and the file's lines (``#`` comments)."""
    found = _entries(settings.api_key_hashes, r"[,\s]+")
    if settings.api_key_file:
        found += _entries(Path(settings.api_key_file).read_text(), r"\s+")
    for number, entry in enumerate(found, 1):
        if not SHA256_HEX.fullmatch(entry):  # never shown: it may be a key put there by mistake
            raise ValueError(
                f"API key hash number {number} (NABLA_API_KEY_HASHES, then "
                "NABLA_API_KEY_FILE) is not 64 hex digits: configure the SHA-256 of each "
                "key, never the key itself (printf %s \"$KEY\" | sha256sum)")
    return found


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key", "").strip() or None


class ApiKeys:
    """The accepted keys, by hash; ``identify`` names the client of a request or refuses."""

    def __init__(self, hashes: Iterable[str]) -> None:
        self.hashes = frozenset(hashes)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys | None:
        """The configured keys, or None when none is configured (then no key is needed)."""
        hashes = configured_hashes(settings)
        return cls(hashes) if hashes else None

    def identify(self, headers: Headers) -> str | dict[str, Any]:
        """The client's identity (``key:`` and 16 hex digits), or the 401 problem."""
        key = presented_key(headers)
        if key is None:
            return problem(401, "unauthorized", "API key required",
                           f"This service needs an API key: {HOW_TO_SEND}")
        digest = key_hash(key)
        if digest not in self.hashes:
            return problem(401, "unauthorized", "Unknown API key",
                           "The API key sent is not one this service accepts; check it, "
                           f"or ask the service's operator for one, and {HOW_TO_SEND}")
        return f"key:{digest[:16]}"
