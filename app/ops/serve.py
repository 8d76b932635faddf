"""The production server: uvicorn on ``app.main:app``, configured from the environment.

This is what the container's ``CMD`` (``nabla serve``) runs. Each worker is a separate
process (uvicorn spawns them, which is safe with JAX's threads) with its own caches and
metrics. On SIGTERM uvicorn stops accepting connections and lets requests in flight finish,
for at most ``NABLA_GRACEFUL_TIMEOUT`` seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import get_settings
from app.ops.logs import uvicorn_log_config


class ServerSettings(BaseSettings):
    """How the server listens; read from the environment, overridable on the command line."""

    model_config = SettingsConfigDict(env_prefix="NABLA_", frozen=True)

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 in the image)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on")
    workers: int = Field(1, ge=1, validation_alias=AliasChoices("WEB_CONCURRENCY",
                                                                "NABLA_WORKERS"),
                         description="worker processes (also read from WEB_CONCURRENCY)")
    graceful_timeout: int = Field(25, ge=0, description="seconds that requests in flight at "
                                  "SIGTERM may take to finish")
    forwarded_allow_ips: str = Field("127.0.0.1", description="proxies whose X-Forwarded-* "
                                     "headers are trusted (comma-separated, or *)")


def serve(host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    """Run the server until SIGINT or SIGTERM; arguments override the environment."""
    import uvicorn

    server = ServerSettings()
    app_settings = get_settings()
    uvicorn.run(
        "app.main:app",
        host=host if host is not None else server.host,
        port=port if port is not None else server.port,
        workers=workers if workers is not None else server.workers,
        log_config=uvicorn_log_config(app_settings.log_level, app_settings.log_format),
        access_log=False,
        timeout_graceful_shutdown=server.graceful_timeout,
        forwarded_allow_ips=server.forwarded_allow_ips,
        server_header=False,
        # uvicorn's own protocol, plus the header timeout it lacks (slowloris)
        http="app.ops.header_timeout:HttpToolsProtocol",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m app.ops.serve [--host H] [--port P] [--workers N]`` (what ``nabla serve``
    runs)."""
    parser = argparse.ArgumentParser(prog="nabla serve")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    serve(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
