"""Prometheus metrics: requests by route template and status, the compile cache, compile time.

Each application has its own registry, so apps made in tests do not collide. Compile time
comes from JAX's own monitoring events (trace, lowering, XLA compile), which JAX reports
for every compilation in the process; one histogram, shared by every registry, counts them.
With several workers each worker has its own metrics (see the README's Operations section).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import jax
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.derivatives import KernelCache

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
COMPILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0, 300.0)
JAX_COMPILE_PHASES = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "xla_compile",
}

COMPILE_SECONDS = Histogram(
    "nabla_compile_seconds", "Seconds spent compiling with JAX, by phase (whole process)",
    ["phase"], buckets=COMPILE_BUCKETS, registry=None,
)
_listener_lock = threading.Lock()
_listening = False


def _on_jax_duration(event: str, duration_secs: float, **_: Any) -> None:
    phase = JAX_COMPILE_PHASES.get(event)
    if phase is not None:
        COMPILE_SECONDS.labels(phase=phase).observe(duration_secs)


def listen_to_jax_compiles() -> None:
    """Feed ``COMPILE_SECONDS`` from JAX's monitoring events (once per process)."""
    global _listening
    with _listener_lock:
        if not _listening:
            jax.monitoring.register_event_duration_secs_listener(_on_jax_duration)
            _listening = True


class CompileCacheCollector(Collector):
    """Reads the hit and miss counters and the size of a ``KernelCache`` at scrape time."""

    def __init__(self, cache: KernelCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("nabla_compile_cache_hits",
                                  "Requests whose compiled kernels were in the cache",
                                  value=self.cache.hits)
        yield CounterMetricFamily("nabla_compile_cache_misses",
                                  "Requests whose kernels had to be built and compiled",
                                  value=self.cache.misses)
        yield GaugeMetricFamily("nabla_compile_cache_entries", "Compiled kernels in the cache",
                                value=len(self.cache))
        yield GaugeMetricFamily("nabla_compile_cache_capacity",
                                "Compiled kernels the cache keeps (LRU)",
                                value=self.cache.capacity)


class Metrics:
    """The metrics of one application, in a registry of its own."""

    def __init__(self, cache: KernelCache) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter("nabla_http_requests", "HTTP requests answered",
                                labels, registry=self.registry)
        self.latency = Histogram("nabla_http_request_duration_seconds",
                                 "Time from request to the end of the response", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_progress = Gauge("nabla_http_requests_in_progress", "HTTP requests being served",
                                 ["method"], registry=self.registry)
        self.registry.register(CompileCacheCollector(cache))
        self.registry.register(COMPILE_SECONDS)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        listen_to_jax_compiles()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
