"""The Python client and the ``nabla`` command; imports nothing from the server."""

from app.client.client import DEFAULT_URL, NablaAPIError, NablaClient
from app.client.retries import RetryPolicy

__all__ = ["DEFAULT_URL", "NablaAPIError", "NablaClient", "RetryPolicy"]
