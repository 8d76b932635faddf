"""Settings from the environment (prefix ``NABLA_``), with the service's limits."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Limits(BaseSettings):
    """Bounds on what one request may ask for; every one is checked before costly work."""

    model_config = SettingsConfigDict(env_prefix="NABLA_", frozen=True)

    max_body_bytes: int = Field(16 * 1024 * 1024, description="request body size (413 above)")
    max_expression_chars: int = Field(32_000, description="characters in one expression")
    max_expressions: int = Field(1_000, description="expressions in a vector-valued list")
    max_depth: int = Field(200, description="nesting depth of the syntax tree")
    max_nodes: int = Field(20_000, description="nodes of the syntax tree, all expressions")
    max_variables: int = Field(1_000, description="distinct variable names")
    max_coordinates: int = Field(1_000_000, description="scalar coordinates, all variables")
    max_points: int = Field(1_000_000, description="points in one batch")
    max_output_entries: int = Field(
        20_000_000, description="numbers in all outputs of one request (Hessian included)"
    )
    max_name_chars: int = Field(64, description="characters in one name")
    max_literal: float = Field(1e300, description="magnitude of a number literal")
    max_exponent: float = Field(1_000, description="magnitude of a constant exponent")
    max_derivative_order: int = Field(10, description="the highest derivative order of "
                                      "'order', 'partials', 'taylor' and /v1/implicit")
    max_tensor_entries: int = Field(100_000, description="numbers in one point's tensor of "
                                    "the highest order (outputs x coordinates^k), and "
                                    "coefficients of a Taylor polynomial")


def _default_workers() -> int:
    # One core stays with the server, so that compiles never starve warm requests. At most
    # 4: each worker holds JAX (~0.3 GiB), and in a container the visible cores can be the
    # host's, not the pod's share.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cores or 2) - 1))


class Settings(Limits):
    """Every setting of the service; see the README for the table."""

    compile_cache_size: int = Field(256, description="compiled executables kept (LRU)")
    response_cache_bytes: int = Field(32 * 1024**2, description="bytes of whole responses "
                                      "kept for identical requests (0: none)")
    cache_dir: str | None = Field(None, description="folder of the persistent cache of "
                                  "compiled programs, kept across restarts and shareable "
                                  "by replicas; unset: $XDG_CACHE_HOME/nabla or "
                                  "~/.cache/nabla; empty: no persistent cache. Trusted "
                                  "code: refused (cache off, with a warning) if another "
                                  "user owns it or group or others can write to it")
    cache_max_bytes: int = Field(1024**3, ge=0, description="bytes of entries kept in "
                                 "the persistent cache folder; beyond it the least "
                                 "recently used are deleted")
    compile_workers: int = Field(default_factory=_default_workers,
                                 description="worker processes for cold compiles")
    compile_timeout_seconds: float = Field(20.0, description="budget of a compile in CPU "
                                           "seconds of its worker")
    worker_memory_bytes: int = Field(4 * 1024**3, description="memory cap of a compile worker")
    max_pending_compiles: int = Field(16, description="distinct compiles queued or running")
    max_concurrent_requests: int = Field(64, description="requests computed at once (503 above)")
    interpret: bool = Field(True, description="answer new small expressions with jets while "
                            "XLA compiles them in the background")
    parse_timeout_seconds: float = Field(5.0, description="budget, in CPU seconds, of "
                                         "parsing a new expression")
    in_process: bool = Field(False, description="compile in the server's threads (tests only)")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="the least severe log records written")
    log_format: Literal["json", "text"] = Field("json", description="one JSON object per line, "
                                                "or plain text for reading at a terminal")
    # Rate limits and API keys of /v1/ (app/api/ratelimit.py, app/api/apikeys.py).
    rate_limit: str = Field("", description="requests one client may send to /v1/, in the "
                            "notation of the limits library ('600/minute', "
                            "'20/second;600/minute'); empty: no limit")
    redis_url: str = Field("", description="a Redis that every replica shares the rate "
                           "limits through (redis://host:6379/0); empty: each process's memory")
    api_key_hashes: str = Field("", description="SHA-256 hashes (hex, comma-separated) of the "
                                "API keys that /v1/ accepts; none (and no file): no key needed")
    api_key_file: str = Field("", description="a file of SHA-256 hashes of API keys, one a line")
    # Deadlines and the cost of answers (issue 15: faults and unbounded costs).
    request_deadline_seconds: float = Field(30.0, gt=0, description="time from a request's "
                                            "arrival to its answer, queueing included; a "
                                            "request that cannot be answered within it gets "
                                            "503 with Retry-After")
    max_response_bytes: int = Field(64 * 1024**2, description="estimated bytes of one answer "
                                    "(24 a number in JSON, 9 in MessagePack); 422 above")
    max_response_bytes_in_flight: int = Field(256 * 1024**2, description="estimated bytes of "
                                              "the answers being computed at once, all "
                                              "requests together; 503 above")
    # Slow clients: a request is read whole, within these bounds, before it takes a slot.
    header_timeout_seconds: float = Field(10.0, gt=0, description="time a connection has to "
                                          "send a request's headers, from its opening or "
                                          "the previous answer (408 and closed after)")
    body_timeout_seconds: float = Field(10.0, gt=0, description="longest wait for the next "
                                        "bytes of a request body, and the grace before "
                                        "min_upload_bytes_per_second applies (408 after)")
    min_upload_bytes_per_second: int = Field(1024, ge=1, description="slowest average rate "
                                             "of a request body after the grace (408 below)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
